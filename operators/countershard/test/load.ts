/** Increment traffic against real counter processes, with every outcome and latency recorded. */
import { sleep } from './helpers.js';

export interface LoadStats {
  /** Acknowledged increments per counter name. */
  acked: Map<string, number>;
  /** Requests without a 2xx (their effect is unknown). */
  failures: string[];
  /** [start ms since epoch, latency ms] per acknowledged request. */
  latencies: [number, number][];
}

export interface Load {
  stats: LoadStats;
  stop(): Promise<void>;
}

/** `clients` concurrent loops incrementing random `names` through random `ports` until stopped. */
export function startLoad(options: {
  ports: () => readonly number[];
  names: readonly string[];
  clients: number;
  authorization: string;
  pauseMs?: number;
}): Load {
  const stats: LoadStats = { acked: new Map(), failures: [], latencies: [] };
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const ports = options.ports();
      const port = ports[Math.floor(Math.random() * ports.length)];
      const name = options.names[Math.floor(Math.random() * options.names.length)] ?? '';
      const started = Date.now();
      const t0 = performance.now();
      try {
        const res = await fetch(
          `http://127.0.0.1:${port}/v1/counters/${encodeURIComponent(name)}/increment`,
          {
            method: 'POST',
            headers: { authorization: options.authorization, 'content-type': 'application/json' },
            body: JSON.stringify({ delta: 1 }),
            signal: AbortSignal.timeout(15_000),
          },
        );
        const text = await res.text();
        if (res.ok) {
          stats.acked.set(name, (stats.acked.get(name) ?? 0) + 1);
          stats.latencies.push([started, performance.now() - t0]);
        } else stats.failures.push(`${res.status} ${text.slice(0, 200)}`);
      } catch (err) {
        stats.failures.push(String(err));
      }
      if (options.pauseMs !== undefined) await sleep(options.pauseMs);
    }
  };
  const loops = Array.from({ length: options.clients }, () => loop());
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** p-quantile (0..1) of the latencies that started within [from, to). */
export function quantile(latencies: readonly [number, number][], q: number, from = 0, to = Infinity): number {
  const values = latencies
    .filter(([at]) => at >= from && at < to)
    .map(([, ms]) => ms)
    .sort((a, b) => a - b);
  if (values.length === 0) return NaN;
  return values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? NaN;
}

export function countIn(latencies: readonly [number, number][], from: number, to: number): number {
  return latencies.filter(([at]) => at >= from && at < to).length;
}
