import { ROOT_CONTEXT, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import { tracing } from '@opentelemetry/sdk-node';
import { describe, expect, it } from 'vitest';
import { RequestRootSampler, redisStatement, samplingRatio } from './telemetry.js';

// The SDK's ratio sampler XORs the id's four 32-bit words: this one lands above every bound below 1.
const traceId = 'ffffffff000000000000000000000000';
const lowTraceId = '00000000000000000000000000000001';
const { RECORD_AND_SAMPLED, NOT_RECORD } = tracing.SamplingDecision;

function decide(sampler: tracing.Sampler, kind: SpanKind, attributes = {}, id = lowTraceId) {
  return sampler.shouldSample(ROOT_CONTEXT, id, 'span', kind, attributes, []).decision;
}

describe('RequestRootSampler', () => {
  const every = new RequestRootSampler(1);

  it('keeps traces rooted in served requests and consumed messages', () => {
    expect(decide(every, SpanKind.SERVER)).toBe(RECORD_AND_SAMPLED);
    expect(decide(every, SpanKind.CONSUMER, { 'messaging.system': 'kafka' })).toBe(RECORD_AND_SAMPLED);
    // kafkajs' batch `poll` span is a CLIENT span: the writer's work starts there.
    expect(decide(every, SpanKind.CLIENT, { 'messaging.system': 'kafka' })).toBe(RECORD_AND_SAMPLED);
  });

  it("drops traces that would start with the process's own client calls", () => {
    expect(decide(every, SpanKind.CLIENT, { 'db.system.name': 'mysql' })).toBe(NOT_RECORD);
    expect(decide(every, SpanKind.CLIENT, { 'http.request.method': 'GET' })).toBe(NOT_RECORD);
  });

  it('keeps the given share of request roots, by trace id', () => {
    const none = new RequestRootSampler(0);
    expect(decide(none, SpanKind.SERVER)).toBe(NOT_RECORD);
    const half = new RequestRootSampler(0.5);
    expect(decide(half, SpanKind.SERVER, {}, lowTraceId)).toBe(RECORD_AND_SAMPLED);
    expect(decide(half, SpanKind.SERVER, {}, traceId)).toBe(NOT_RECORD);
    expect(() => new RequestRootSampler(1.5)).toThrow(RangeError);
  });

  it('lets children follow their parent under ParentBasedSampler (a MySQL call inside a request is traced)', () => {
    const sampler = new tracing.ParentBasedSampler({ root: every });
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: lowTraceId,
      spanId: '0000000000000001',
      traceFlags: TraceFlags.SAMPLED,
    });
    const inside = sampler.shouldSample(
      parent,
      lowTraceId,
      'SELECT',
      SpanKind.CLIENT,
      { 'db.system.name': 'mysql' },
      [],
    );
    expect(inside.decision).toBe(RECORD_AND_SAMPLED);
  });
});

describe('redisStatement', () => {
  it('shows the command and key, never values', () => {
    expect(redisStatement('SADD', ['uq:{7}:d:2026-12-06', 'user-42'])).toBe('sadd uq:{7}:d:2026-12-06');
    expect(redisStatement('PING', [])).toBe('ping');
    expect(redisStatement('get', [Buffer.from('ctr:{1}:a')])).toBe('get ctr:{1}:a');
  });

  it('shows scripts by SHA prefix, key count and first key, without their body or arguments', () => {
    const sha = 'b4e59f4e154128969263954d63f5e08d9a42395f';
    expect(redisStatement('evalsha', [sha, 2, 'ctr:{5}:n', 'ctr:{5}:n:p', 'secret-arg'])).toBe(
      'evalsha b4e59f4e1541 2 keys ctr:{5}:n',
    );
    const body = "local v = redis.call('GET', KEYS[1])";
    const statement = redisStatement('eval', [body, 1, 'k', 'user-1']);
    expect(statement).toBe('eval <script> 1 keys k');
    expect(statement).not.toContain('redis.call');
  });

  it('never shows credentials', () => {
    expect(redisStatement('auth', ['default', 'hunter2'])).toBe('auth');
    expect(redisStatement('HELLO', [3, 'AUTH', 'default', 'hunter2'])).toBe('hello');
  });
});

describe('samplingRatio', () => {
  it('reads OTEL_TRACES_SAMPLER_ARG as a share in [0, 1], default 1', () => {
    expect(samplingRatio(undefined)).toBe(1);
    expect(samplingRatio(' ')).toBe(1);
    expect(samplingRatio('0.25')).toBe(0.25);
    expect(() => samplingRatio('2')).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
    expect(() => samplingRatio('often')).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
  });
});
