import type { Scenario } from './like-scenarios.js';
import type { PlannedRequest } from './load.js';

const SPREAD_NAMES = 10_000;

/**
 * The counter scenarios. Every increment adds exactly 1, so a name's value in MySQL must equal the
 * number of acknowledged increments of it; every unique event is a distinct user of one day.
 */
export function counterScenarios(
  runId: string,
  token: (userId: string, scopes?: readonly string[]) => string,
): Scenario[] {
  const writer = { authorization: `Bearer ${token(`${runId}-svc`, ['counters:write'])}` };
  const reader = { authorization: `Bearer ${token(`${runId}-reader`)}` };
  const spreadName = (index: number) => `${runId}-c${index % SPREAD_NAMES}`;
  const body = JSON.stringify({ delta: 1 });
  let spread = 0;
  let read = 0;
  let mixed = 0;
  let user = 0;
  // A counter's first access warms it from MySQL behind the writer barrier (tens of ms, once per
  // name and cache TTL). Steady state is warm: the spread scenarios read every name once first so
  // that they measure increments and reads, not 10,000 first touches.
  const warmEveryName = (): PlannedRequest[] =>
    Array.from({ length: SPREAD_NAMES / 100 }, (_, batch) => ({
      method: 'POST',
      path: '/v1/counters:batchGet',
      headers: reader,
      body: JSON.stringify({ names: Array.from({ length: 100 }, (_, i) => spreadName(batch * 100 + i)) }),
    }));
  return [
    {
      name: 'counter-incr-spread',
      service: 'counter',
      appFloor: true,
      pathFloor: true,
      verify: 'counters',
      prepare: warmEveryName,
      next: () => {
        const name = spreadName(spread++);
        return { method: 'POST', path: `/v1/counters/${name}/increment`, headers: writer, body, key: name };
      },
    },
    {
      name: 'counter-incr-hot',
      service: 'counter',
      appFloor: true,
      verify: 'counters',
      next: () => {
        const name = `${runId}-hot`;
        return { method: 'POST', path: `/v1/counters/${name}/increment`, headers: writer, body, key: name };
      },
    },
    {
      name: 'counter-read',
      service: 'counter',
      appFloor: true,
      pathFloor: true,
      verify: 'none',
      prepare: warmEveryName,
      next: () => ({ method: 'GET', path: `/v1/counters/${spreadName(read++)}`, headers: reader }),
    },
    {
      // Reads with increments of the same names mixed in (one in ten): what the pod-local read
      // cache does when entries are invalidated all the time. The verify reads every incremented
      // name back through the service (cache included) and compares it with MySQL.
      name: 'counter-read-mixed',
      service: 'counter',
      verify: 'counters',
      prepare: warmEveryName,
      next: () => {
        const name = spreadName(Math.floor(Math.random() * SPREAD_NAMES));
        if (++mixed % 10 !== 0) return { method: 'GET', path: `/v1/counters/${name}`, headers: reader };
        return { method: 'POST', path: `/v1/counters/${name}/increment`, headers: writer, body, key: name };
      },
    },
    {
      name: 'uniques-event',
      service: 'counter',
      verify: 'uniques',
      next: () => {
        const userId = `${runId}-u${user++}`;
        return {
          method: 'POST',
          path: `/v1/uniques/${runId}-dau/events`,
          headers: { authorization: `Bearer ${token(userId)}` },
          body: JSON.stringify({ userId }),
          key: userId,
        };
      },
    },
  ];
}
