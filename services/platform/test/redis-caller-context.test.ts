/**
 * Auto-pipelined commands of different callers, sent in one batch, must each be sent in their own
 * caller's context: that is the context the ioredis instrumentation parents its span to. The
 * instrumentation patches `Redis.prototype.sendCommand` and reads `context.active()` there; this
 * test records the same thing in the same place, against a real Redis.
 */
import { randomBytes } from 'node:crypto';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ROOT_CONTEXT, context, createContextKey } from '@opentelemetry/api';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis, type Command } from 'ioredis';
import { createRedisClient, defineScripts, waitForRedisReady } from '../src/index.js';
import { currentRedisMaster } from '../../../hack/testing/stack-control.js';

const logger = pino({ level: 'silent' });
const CALLER = createContextKey('test caller');
const KEY = `hs-test-caller-${randomBytes(4).toString('hex')}`;
const inContextOf = (caller: string) => ROOT_CONTEXT.setValue(CALLER, caller);

describe('auto-pipelined commands keep their caller context (real Redis)', () => {
  const sent: { command: string; caller: unknown }[] = [];
  const originalSend = Object.getOwnPropertyDescriptor(Redis.prototype, 'sendCommand');
  const contextManager = new AsyncLocalStorageContextManager();
  let client: Redis;

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    const send = Redis.prototype.sendCommand;
    // Where and how the instrumentation looks: before the client exists, on the prototype.
    Redis.prototype.sendCommand = function (this: Redis, command: Command, ...rest: unknown[]) {
      sent.push({ command: command.name, caller: context.active().getValue(CALLER) });
      return (send as (...args: unknown[]) => unknown).call(this, command, ...rest) as ReturnType<
        Redis['sendCommand']
      >;
    };
    const master = await currentRedisMaster('shard-1');
    client = createRedisClient({ host: master.host, port: master.port, logger });
    await waitForRedisReady(client, 5_000);
  });
  afterAll(async () => {
    await client.del(KEY);
    client.disconnect();
    if (originalSend) Object.defineProperty(Redis.prototype, 'sendCommand', originalSend);
    context.disable();
  });
  beforeEach(() => {
    sent.length = 0;
  });

  it('sends a command queued behind another caller in its own context, both orders', async () => {
    const { hsTestCallerIncr } = defineScripts(client, {
      hsTestCallerIncr: {
        lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])",
        numberOfKeys: 1,
        parse: (reply) => Number(reply),
      },
    });
    await hsTestCallerIncr([KEY], [0]); // loads the script, so the batch below is plain EVALSHA
    sent.length = 0;

    const pending = [
      context.with(inContextOf('background'), () => client.hset(`${KEY}:acks`, 'pod', '1')),
      context.with(inContextOf('request A'), () => hsTestCallerIncr([KEY], [1])),
      context.with(inContextOf('request B'), () => client.get(KEY)),
      client.ping(),
    ];
    // All four wait in one auto-pipeline, to be sent from a callback the background command scheduled.
    expect(client.autoPipelineQueueSize).toBe(4);
    await Promise.all(pending);
    expect(sent).toEqual([
      { command: 'hset', caller: 'background' },
      { command: 'evalsha', caller: 'request A' },
      { command: 'get', caller: 'request B' },
      { command: 'ping', caller: undefined },
    ]);

    sent.length = 0;
    await Promise.all([
      context.with(inContextOf('request C'), () => hsTestCallerIncr([KEY], [1])),
      context.with(inContextOf('background'), () => client.hset(`${KEY}:acks`, 'pod', '2')),
    ]);
    expect(sent).toEqual([
      { command: 'evalsha', caller: 'request C' },
      { command: 'hset', caller: 'background' },
    ]);
    expect(await client.get(KEY)).toBe('2');
    await client.del(`${KEY}:acks`);
  });

  it('leaves a command sent directly (no auto-pipeline) in the context it is sent from', async () => {
    await context.with(inContextOf('direct'), () => client.pipeline().get(KEY).set(KEY, '7').exec());
    expect(sent).toEqual([
      { command: 'get', caller: 'direct' },
      { command: 'set', caller: 'direct' },
    ]);
  });
});
