import { describe, expect, it } from 'vitest';
import type { KafkaMessage } from 'kafkajs';
import {
  DLQ_ERROR_MAX_CHARS,
  DLQ_HEADERS,
  buildDlqHeaders,
  decodeHeaders,
  decodeMessage,
  dlqTopicFor,
} from './messages.js';

describe('decodeHeaders', () => {
  it('decodes buffers and strings, keeps the last of repeated headers, drops undefined', () => {
    expect(
      decodeHeaders({
        a: Buffer.from('x'),
        b: 'y',
        c: [Buffer.from('1'), '2'],
        d: undefined,
      }),
    ).toEqual({ a: 'x', b: 'y', c: '2' });
    expect(decodeHeaders(undefined)).toEqual({});
  });
});

describe('decodeMessage', () => {
  it('decodes key and value as UTF-8 and keeps nulls', () => {
    const raw = {
      key: Buffer.from('post-1'),
      value: Buffer.from('{"ok":"é"}'),
      timestamp: '1700000000000',
      attributes: 0,
      offset: '42',
      headers: { h: Buffer.from('v') },
    } satisfies KafkaMessage;
    expect(decodeMessage('t', 3, raw)).toEqual({
      topic: 't',
      partition: 3,
      offset: '42',
      timestamp: '1700000000000',
      key: 'post-1',
      value: '{"ok":"é"}',
      headers: { h: 'v' },
    });
    expect(decodeMessage('t', 0, { ...raw, key: null, value: null })).toMatchObject({
      key: null,
      value: null,
    });
  });
});

describe('DLQ headers', () => {
  it('names the DLQ topic with the suffix', () => {
    expect(dlqTopicFor('likes.events.v1')).toBe('likes.events.v1.dlq');
    expect(dlqTopicFor('x', '-dead')).toBe('x-dead');
  });

  it('keeps original headers and adds origin, error, attempts, group and time', () => {
    const headers = buildDlqHeaders({
      original: { traceparent: Buffer.from('00-abc'), [DLQ_HEADERS.attempts]: 'stale' },
      topic: 'likes.events.v1',
      partition: 4,
      offset: '9007199254740993',
      error: 'boom',
      attempts: 7,
      groupId: 'writer',
      failedAt: new Date('2026-01-02T03:04:05.000Z'),
    });
    expect(decodeHeaders(headers)).toEqual({
      traceparent: '00-abc',
      [DLQ_HEADERS.topic]: 'likes.events.v1',
      [DLQ_HEADERS.partition]: '4',
      [DLQ_HEADERS.offset]: '9007199254740993',
      [DLQ_HEADERS.error]: 'boom',
      [DLQ_HEADERS.attempts]: '7',
      [DLQ_HEADERS.consumerGroup]: 'writer',
      [DLQ_HEADERS.failedAt]: '2026-01-02T03:04:05.000Z',
    });
  });

  it('truncates long error texts', () => {
    const headers = buildDlqHeaders({
      original: undefined,
      topic: 't',
      partition: 0,
      offset: '0',
      error: 'x'.repeat(5000),
      attempts: 1,
      groupId: 'g',
      failedAt: new Date(0),
    });
    const error = headers[DLQ_HEADERS.error];
    expect(typeof error === 'string' ? error.length : -1).toBe(DLQ_ERROR_MAX_CHARS);
  });
});
