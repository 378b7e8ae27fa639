import { describe, expect, it } from 'vitest';
import {
  RedisError,
  RedisReadOnlyError,
  RedisReplyError,
  RedisTimeoutError,
  RedisUnavailableError,
  isReadOnlyReply,
  isRedisClientError,
  toRedisError,
} from './errors.js';

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

describe('toRedisError', () => {
  it.each([
    [new Error('Command timed out'), RedisTimeoutError, 'TIMEOUT', true],
    [
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      RedisUnavailableError,
      'DISCONNECTED',
      true,
    ],
    [new Error('Connection is closed.'), RedisUnavailableError, 'CLOSED', false],
    [
      named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 1).'),
      RedisUnavailableError,
      'CONNECTION_LOST',
      true,
    ],
    [
      named('AbortError', 'Command aborted due to connection close'),
      RedisUnavailableError,
      'CONNECTION_LOST',
      true,
    ],
    [
      named('ReplyError', "READONLY You can't write against a read only replica."),
      RedisReadOnlyError,
      'READONLY',
      true,
    ],
    [
      named('ReplyError', 'LOADING Redis is loading the dataset in memory'),
      RedisUnavailableError,
      'LOADING',
      true,
    ],
    [named('ReplyError', 'BUSY Redis is busy running a script.'), RedisUnavailableError, 'BUSY', true],
    [named('ReplyError', 'MASTERDOWN Link with MASTER is down'), RedisUnavailableError, 'MASTERDOWN', true],
    [
      named('ReplyError', 'WRONGTYPE Operation against a key holding the wrong kind of value'),
      RedisReplyError,
      'WRONGTYPE',
      false,
    ],
    [
      named('ReplyError', 'ERR Error running script (call to f_x): @user_script:1: boom'),
      RedisReplyError,
      'ERR',
      false,
    ],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
        code: 'ECONNREFUSED',
        syscall: 'connect',
      }),
      RedisUnavailableError,
      'ECONNREFUSED',
      true,
    ],
  ])('maps %s', (raw, type, code, retryable) => {
    const mapped = toRedisError(raw, 'shard-1');
    expect(mapped).toBeInstanceOf(type);
    expect(mapped).toBeInstanceOf(RedisError);
    expect(mapped).toMatchObject({ code, retryable, shard: 'shard-1' });
    expect(mapped.cause).toBe(raw);
    expect(mapped.message).toContain('shard-1');
  });

  it('passes typed errors through and wraps non-errors', () => {
    const typed = new RedisTimeoutError('x');
    expect(toRedisError(typed)).toBe(typed);
    expect(toRedisError('weird')).toMatchObject({ code: 'UNKNOWN', retryable: false });
  });

  it('keeps the kind for metrics', () => {
    expect(toRedisError(new Error('Command timed out')).kind).toBe('timeout');
    expect(toRedisError(named('ReplyError', 'READONLY x')).kind).toBe('readonly');
    expect(toRedisError(new Error('Connection is closed.')).kind).toBe('unavailable');
    expect(toRedisError(named('ReplyError', 'NOSCRIPT No matching script')).kind).toBe('reply');
  });
});

describe('isRedisClientError / isReadOnlyReply', () => {
  it('recognises client and server errors but not programming errors', () => {
    expect(isRedisClientError(named('ReplyError', 'ERR x'))).toBe(true);
    expect(isRedisClientError(new Error('Command timed out'))).toBe(true);
    expect(isRedisClientError(new RedisReadOnlyError('x'))).toBe(true);
    expect(isRedisClientError(new TypeError('Cannot read properties of undefined'))).toBe(false);
    expect(isRedisClientError('string')).toBe(false);
  });

  it('spots READONLY raw or typed', () => {
    expect(isReadOnlyReply(named('ReplyError', 'READONLY x'))).toBe(true);
    expect(isReadOnlyReply(new RedisReadOnlyError('x'))).toBe(true);
    expect(isReadOnlyReply(new Error('ERR READONLY'))).toBe(false);
  });
});
