/** Test teardown against Redis shards that a failover or failback test may have just moved. */
import type { Redis } from 'ioredis';

/** What the cleanup needs of a shard client (`RedisShardClient` of the platform). */
interface CleanableShard {
  shard: string;
  redis: Redis;
  waitUntilReady(timeoutMs: number): Promise<void>;
}

/**
 * Deletes every key matching one of `patterns` on `shard` (SCAN + UNLINK), and first HDELs
 * `hashFields` when given. A failover test ends by moving the master back: the client then
 * reconnects, and with the offline queue off (as the services run) a command sent meanwhile fails
 * at once ("Stream isn't writeable"). So a failed pass waits until the client is ready and starts
 * over, until `timeoutMs`; then the last error is thrown, so a teardown that could not clean up
 * still fails loudly.
 */
export async function cleanShard(
  shard: CleanableShard,
  patterns: readonly string[],
  options: { hashFields?: { key: string; fields: readonly string[] }; timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    try {
      await shard.waitUntilReady(Math.max(1, deadline - Date.now()));
      const { hashFields } = options;
      if (hashFields !== undefined && hashFields.fields.length > 0)
        await shard.redis.hdel(hashFields.key, ...hashFields.fields);
      for (const pattern of patterns) {
        let cursor = '0';
        do {
          const [next, keys] = await shard.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await shard.redis.unlink(...keys);
        } while (cursor !== '0');
      }
      return;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
