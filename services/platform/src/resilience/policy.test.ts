import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { badRequest } from '../http/problem.js';
import {
  BreakerOpenError,
  DependencyTimeoutError,
  DependencyUnavailableError,
  OperationAbortedError,
  createPolicy,
  type BreakerState,
  type PolicyOptions,
} from './index.js';

const logger = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function setup(overrides: Partial<PolicyOptions> = {}) {
  const registry = new Registry();
  const policy = createPolicy(
    {
      name: 'test:dep',
      dependency: 'test',
      timeoutMs: 200,
      retry: false,
      breaker: { consecutiveFailures: 3, halfOpenAfterMs: 50 },
      ...overrides,
    },
    { registry, logger },
  );
  const states: BreakerState[] = [];
  policy.onStateChange((s) => states.push(s));
  return { registry, policy, states };
}

/** A function that fails `failures` times, then succeeds; counts its calls. */
function flaky(failures: number, error: () => unknown = () => new Error('boom')) {
  const fn = async () => {
    fn.calls++;
    if (fn.calls <= failures) throw error();
    return 'ok';
  };
  fn.calls = 0;
  return fn;
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>) {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
}

describe('createPolicy: circuit breaker', () => {
  it('opens after N consecutive failures and then fails fast without calling the function', async () => {
    const { policy, states } = setup();
    const fn = flaky(Infinity);
    for (let i = 0; i < 3; i++) await expect(policy.execute(fn)).rejects.toThrow('boom');
    expect(fn.calls).toBe(3);
    expect(policy.breakerState()).toBe('open');
    expect(states).toEqual(['open']);

    const started = performance.now();
    const err = await policy.execute(fn).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(BreakerOpenError);
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect(err).toMatchObject({ status: 503, retryAfterSeconds: 1, policy: 'test:dep', dependency: 'test' });
    expect(fn.calls).toBe(3); // not called while open
    expect(elapsed).toBeLessThan(50);
  });

  it('does not open when failures are not consecutive', async () => {
    const { policy } = setup();
    const failing = flaky(Infinity);
    for (let round = 0; round < 3; round++) {
      await expect(policy.execute(failing)).rejects.toThrow('boom');
      await expect(policy.execute(failing)).rejects.toThrow('boom');
      await expect(policy.execute(async () => 'ok')).resolves.toBe('ok');
    }
    expect(policy.breakerState()).toBe('closed');
  });

  it('half-open probe closes the breaker on success', async () => {
    const { policy, states, registry } = setup();
    const fn = flaky(3);
    for (let i = 0; i < 3; i++) await expect(policy.execute(fn)).rejects.toThrow();
    await expect(policy.execute(fn)).rejects.toBeInstanceOf(BreakerOpenError);
    await sleep(70);
    await expect(policy.execute(fn)).resolves.toBe('ok');
    expect(policy.breakerState()).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
    expect(await metricValue(registry, 'hyperscale_breaker_state', { name: 'test:dep' })).toBe(0);
    for (const to of ['open', 'half-open', 'closed']) {
      expect(
        await metricValue(registry, 'hyperscale_breaker_transitions_total', { name: 'test:dep', to }),
      ).toBe(1);
    }
  });

  it('half-open probe reopens the breaker on failure, which fails fast again', async () => {
    const { policy, states } = setup();
    const fn = flaky(Infinity);
    for (let i = 0; i < 3; i++) await expect(policy.execute(fn)).rejects.toThrow();
    await sleep(70);
    await expect(policy.execute(fn)).rejects.toThrow('boom'); // the probe reached the dependency
    expect(fn.calls).toBe(4);
    expect(policy.breakerState()).toBe('open');
    await expect(policy.execute(fn)).rejects.toBeInstanceOf(BreakerOpenError);
    expect(fn.calls).toBe(4);
    expect(states).toEqual(['open', 'half-open', 'open']);
  });

  it('lets concurrent callers wait for the half-open probe instead of stampeding the dependency', async () => {
    const { policy } = setup();
    const failing = flaky(Infinity);
    for (let i = 0; i < 3; i++) await expect(policy.execute(failing)).rejects.toThrow();
    await sleep(70);
    let calls = 0;
    const slowOk = async () => {
      calls++;
      await sleep(20);
      return 'ok';
    };
    const results = await Promise.all(Array.from({ length: 10 }, () => policy.execute(slowOk)));
    expect(results).toEqual(Array(10).fill('ok'));
    expect(policy.breakerState()).toBe('closed');
    expect(calls).toBe(10); // one probe first, then the 9 waiters once it closed
  });

  it('does not count client errors (4xx HttpProblem) against the dependency', async () => {
    const { policy } = setup();
    const fn = flaky(Infinity, () => badRequest('body.delta', 'must be an integer'));
    for (let i = 0; i < 5; i++) await expect(policy.execute(fn)).rejects.toMatchObject({ status: 400 });
    expect(policy.breakerState()).toBe('closed');
  });

  it('accepts an injected failure predicate', async () => {
    const { policy } = setup({
      countsAsFailure: (err) => !(err instanceof Error && err.message === 'not found'),
    });
    const fn = flaky(Infinity, () => new Error('not found'));
    for (let i = 0; i < 5; i++) await expect(policy.execute(fn)).rejects.toThrow('not found');
    expect(policy.breakerState()).toBe('closed');
  });
});

describe('createPolicy: timeout', () => {
  it('rejects with DependencyTimeoutError when an attempt exceeds timeoutMs, and aborts its signal', async () => {
    const { policy } = setup({ timeoutMs: 40 });
    let seen: AbortSignal | undefined;
    const started = performance.now();
    const err = await policy
      .execute((signal) => {
        seen = signal;
        return new Promise<never>(() => undefined); // never settles: ignores the signal on purpose
      })
      .catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(DependencyTimeoutError);
    expect(err).toMatchObject({ status: 503, timeoutMs: 40 });
    expect(elapsed).toBeGreaterThanOrEqual(35);
    expect(elapsed).toBeLessThan(250);
    expect(seen?.aborted).toBe(true);
  });

  it('counts timeouts against the breaker', async () => {
    const { policy } = setup({ timeoutMs: 10, breaker: { consecutiveFailures: 2, halfOpenAfterMs: 1000 } });
    const hang = () => new Promise<never>(() => undefined);
    await expect(policy.execute(hang)).rejects.toBeInstanceOf(DependencyTimeoutError);
    await expect(policy.execute(hang)).rejects.toBeInstanceOf(DependencyTimeoutError);
    expect(policy.breakerState()).toBe('open');
  });

  it("maps the caller's abort to OperationAbortedError, neither retried nor counted", async () => {
    const { policy } = setup({
      timeoutMs: 1000,
      retry: { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 2 },
      breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1000 },
    });
    const controller = new AbortController();
    let calls = 0;
    const pending = policy.execute(() => {
      calls++;
      return new Promise<never>(() => undefined);
    }, controller.signal);
    setTimeout(() => controller.abort(new Error('client went away')), 20);
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationAbortedError);
    expect(calls).toBe(1);
    expect(policy.breakerState()).toBe('closed');
    await expect(policy.execute(async () => 1, controller.signal)).rejects.toBeInstanceOf(
      OperationAbortedError,
    );
  });
});

describe('createPolicy: retry', () => {
  const retryable = () => Object.assign(new Error('transient'), { retryable: true });

  it('stops at maxAttempts (first call included) and rethrows the last error', async () => {
    const { policy } = setup({
      retry: { maxAttempts: 4, initialDelayMs: 1, maxDelayMs: 5 },
      breaker: { consecutiveFailures: 100, halfOpenAfterMs: 50 },
    });
    const fn = flaky(Infinity, retryable);
    await expect(policy.execute(fn)).rejects.toThrow('transient');
    expect(fn.calls).toBe(4);
  });

  it('succeeds when a retry succeeds', async () => {
    const { policy } = setup({ retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 } });
    const fn = flaky(2, retryable);
    await expect(policy.execute(fn)).resolves.toBe('ok');
    expect(fn.calls).toBe(3);
  });

  it('does not retry errors the predicate classifies as not retryable', async () => {
    const { policy } = setup({ retry: { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 5 } });
    const plain = flaky(Infinity); // unclassified Error: not retried by default
    await expect(policy.execute(plain)).rejects.toThrow('boom');
    expect(plain.calls).toBe(1);
    const vetoed = flaky(Infinity, () =>
      Object.assign(new Error('ECONNRESET'), { code: 'ECONNRESET', retryable: false }),
    );
    await expect(policy.execute(vetoed)).rejects.toThrow();
    expect(vetoed.calls).toBe(1);
  });

  it('uses an injected retry predicate', async () => {
    const { policy } = setup({
      retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 },
      isRetryable: (err) => err instanceof Error && err.message === 'boom',
    });
    const fn = flaky(Infinity);
    await expect(policy.execute(fn)).rejects.toThrow('boom');
    expect(fn.calls).toBe(3);
  });

  it('retries timeouts and transient socket errors by default', async () => {
    const { policy } = setup({ timeoutMs: 20, retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 } });
    let calls = 0;
    const result = await policy.execute(async () => {
      calls++;
      if (calls === 1) return new Promise<never>(() => undefined); // times out
      if (calls === 2) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      return 'third time';
    });
    expect(result).toBe('third time');
    expect(calls).toBe(3);
  });

  it('stops retrying as soon as the breaker opens', async () => {
    const { policy } = setup({
      retry: { maxAttempts: 10, initialDelayMs: 1, maxDelayMs: 5 },
      breaker: { consecutiveFailures: 2, halfOpenAfterMs: 1000 },
    });
    const fn = flaky(Infinity, retryable);
    await expect(policy.execute(fn)).rejects.toBeInstanceOf(BreakerOpenError);
    expect(fn.calls).toBe(2);
  });

  it('backs off between attempts, each delay capped by maxDelayMs', async () => {
    const { policy } = setup({
      retry: { maxAttempts: 6, initialDelayMs: 10, maxDelayMs: 30 },
      breaker: { consecutiveFailures: 100, halfOpenAfterMs: 50 },
    });
    const at: number[] = [];
    await expect(
      policy.execute(async () => {
        at.push(performance.now());
        throw retryable();
      }),
    ).rejects.toThrow();
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(gaps).toHaveLength(5);
    for (const gap of gaps) expect(gap).toBeLessThan(30 + 50); // cap + timer slack
    // uncapped doubling from 10 ms would wait 10+20+40+80+160 = 310 ms in total
    expect(gaps.reduce((a, b) => a + b, 0)).toBeLessThan(5 * 30 + 60);
  });
});

describe('createPolicy: metrics and validation', () => {
  it('exports state and transitions per {dependency, name}; policies share one registry', async () => {
    const registry = new Registry();
    const make = (name: string) =>
      createPolicy(
        {
          name,
          dependency: 'redis',
          timeoutMs: 100,
          retry: false,
          breaker: { consecutiveFailures: 1, halfOpenAfterMs: 30 },
        },
        { registry, logger },
      );
    const a = make('redis:shard-0');
    const b = make('redis:shard-1');
    expect(await metricValue(registry, 'hyperscale_breaker_state', { name: 'redis:shard-0' })).toBe(0);
    await expect(a.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(
      await metricValue(registry, 'hyperscale_breaker_state', { dependency: 'redis', name: 'redis:shard-0' }),
    ).toBe(2);
    expect(await metricValue(registry, 'hyperscale_breaker_state', { name: 'redis:shard-1' })).toBe(0);
    await sleep(40);
    let probeState: number | undefined;
    await a.execute(async () => {
      await sleep(1); // cockatiel flips to half-open right after starting the probe
      probeState = await metricValue(registry, 'hyperscale_breaker_state', { name: 'redis:shard-0' });
    });
    expect(probeState).toBe(1); // half-open while the probe runs
    expect(await metricValue(registry, 'hyperscale_breaker_state', { name: 'redis:shard-0' })).toBe(0);
    expect(
      await metricValue(registry, 'hyperscale_breaker_transitions_total', {
        name: 'redis:shard-0',
        to: 'open',
      }),
    ).toBe(1);
    expect(
      await metricValue(registry, 'hyperscale_breaker_transitions_total', {
        name: 'redis:shard-1',
        to: 'open',
      }),
    ).toBeUndefined();
    expect(b.breakerState()).toBe('closed');
  });

  it('rejects nonsensical options', () => {
    const registry = new Registry();
    const base: PolicyOptions = {
      name: 'x',
      dependency: 'y',
      timeoutMs: 10,
      retry: false,
      breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1 },
    };
    expect(() => createPolicy({ ...base, timeoutMs: 0 }, { registry, logger })).toThrow(RangeError);
    expect(() =>
      createPolicy(
        { ...base, retry: { maxAttempts: 0, initialDelayMs: 1, maxDelayMs: 1 } },
        { registry, logger },
      ),
    ).toThrow(RangeError);
    expect(() =>
      createPolicy(
        { ...base, retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 1 } },
        { registry, logger },
      ),
    ).toThrow(RangeError);
  });

  it('keeps running when a state listener throws', async () => {
    const { policy } = setup({ breaker: { consecutiveFailures: 1, halfOpenAfterMs: 1000 } });
    policy.onStateChange(() => {
      throw new Error('listener bug');
    });
    await expect(policy.execute(() => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(policy.breakerState()).toBe('open');
  });
});

describe('createPolicy without a timeout layer (timeoutMs: null)', () => {
  it('lets a call run past what a timeout would allow, and still breaks on failures', async () => {
    const { policy, states } = setup({ timeoutMs: null });
    await expect(policy.execute(() => sleep(300).then(() => 'late but fine'))).resolves.toBe('late but fine');
    const failing = flaky(10);
    for (let i = 0; i < 3; i++) await expect(policy.execute(failing)).rejects.toThrow('boom');
    await expect(policy.execute(failing)).rejects.toBeInstanceOf(BreakerOpenError);
    expect(failing.calls).toBe(3);
    expect(states).toEqual(['open']);
  });
});
