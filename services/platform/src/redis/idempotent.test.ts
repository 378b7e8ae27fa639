import { describe, expect, it } from 'vitest';
import { RedisReplyError } from './errors.js';
import { idempotencyKey, idempotentLua, idempotentScript, parseIdempotentReply } from './idempotent.js';

describe('idempotencyKey', () => {
  it('shares the hash tag of the data keys', () => {
    expect(idempotencyKey('post-42', 'req-1')).toBe('idem:{post-42}:req-1');
  });
  it.each(['', 'has space', 'x'.repeat(129), 'a{b}'])('rejects request id %j', (id) => {
    expect(() => idempotencyKey('t', id)).toThrow(RangeError);
  });
});

describe('idempotentScript', () => {
  it('adds the record key to the key count and embeds the body after the check', () => {
    const def = idempotentScript("return redis.call('INCRBY', KEYS[2], ARGV[2])", 1);
    expect(def.numberOfKeys).toBe(2);
    const lua = idempotentLua('return 1');
    expect(lua.indexOf("redis.call('GET', idem_key)")).toBeLessThan(lua.indexOf('return 1'));
    expect(lua.indexOf('return 1')).toBeLessThan(lua.indexOf("redis.call('SET', idem_key"));
  });
});

describe('parseIdempotentReply', () => {
  it('reads applied and result', () => {
    expect(parseIdempotentReply([1, '5'])).toEqual({ applied: true, result: '5' });
    expect(parseIdempotentReply([0, Buffer.from('5')])).toEqual({ applied: false, result: '5' });
  });
  it.each([null, 'x', [1], [2, 'x'], [1, 5]])('rejects %j', (reply) => {
    expect(() => parseIdempotentReply(reply)).toThrow(RedisReplyError);
  });
});
