import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { defineScripts } from './scripts.js';

// A client that never connects: registration and argument checks happen before any I/O.
const client = new Redis({ lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
afterAll(() => client.disconnect());

describe('defineScripts', () => {
  it('returns one invoker per definition', () => {
    const scripts = defineScripts(client, {
      hsIncr: { lua: "return redis.call('INCR', KEYS[1])", numberOfKeys: 1, parse: (r) => Number(r) },
      hsEcho: { lua: 'return ARGV[1]', numberOfKeys: 0 },
    });
    expect(typeof scripts.hsIncr).toBe('function');
    expect(typeof scripts.hsEcho).toBe('function');
  });

  it('rejects a call with the wrong number of keys before sending anything', async () => {
    const { hsIncr } = defineScripts(client, {
      hsIncr: { lua: "return redis.call('INCR', KEYS[1])", numberOfKeys: 1 },
    });
    await expect(hsIncr(['a', 'b'])).rejects.toThrow(RangeError);
  });

  it('takes groups of keys for a batch script: a positive multiple of the group, checked before sending', async () => {
    const { hsBatch } = defineScripts(client, {
      hsBatch: { lua: 'return #KEYS', numberOfKeys: { multipleOf: 2 } },
    });
    await expect(hsBatch([])).rejects.toThrow(/positive multiple of 2 keys, got 0/);
    await expect(hsBatch(['a', 'b', 'c'])).rejects.toThrow(/positive multiple of 2 keys, got 3/);
    // Four keys pass the check and reach the (never connected) client.
    await expect(hsBatch(['a', 'b', 'c', 'd'])).rejects.not.toThrow(RangeError);
    expect(() =>
      defineScripts(client, { hsBadGroup: { lua: 'return 1', numberOfKeys: { multipleOf: 0 } } }),
    ).toThrow(RangeError);
  });

  it('allows the same script twice but not a different source under a taken name', () => {
    const lua = "return redis.call('INCR', KEYS[1])";
    expect(() => defineScripts(client, { hsIncr: { lua, numberOfKeys: 1 } })).not.toThrow();
    expect(() => defineScripts(client, { hsIncr: { lua: 'return 2', numberOfKeys: 1 } })).toThrow(
      /different source/,
    );
  });

  it('refuses names that are not identifiers and negative key counts', () => {
    expect(() => defineScripts(client, { 'my-script': { lua: 'return 1', numberOfKeys: 0 } })).toThrow(
      /identifier/,
    );
    expect(() => defineScripts(client, { hsBad: { lua: 'return 1', numberOfKeys: -1 } })).toThrow(RangeError);
  });
});
