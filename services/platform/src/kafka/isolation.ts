import { halves } from './batching.js';

/** How processing a chunk ended: all items handled or dead-lettered, paused on a transient failure, or stopped. */
export type Outcome = 'done' | 'paused' | 'interrupted';

/** Result of trying a group of items up to N times. */
export type AttemptResult =
  | { ok: true; attempts: number }
  | { ok: false; interrupted: true; attempts: number }
  | { ok: false; interrupted: false; attempts: number; error: unknown };

/** The side effects {@link processWithIsolation} drives; the consumer implements them with kafkajs. */
export interface IsolationSteps<T> {
  /** Calls the handler on `items` up to `attempts` times (with backoff between). */
  attempt(items: T[], attempts: number): Promise<AttemptResult>;
  /** `items` were handled: resolve/commit past them. */
  succeeded(items: T[]): Promise<void>;
  /** Parks a poison item; false if that failed (the item must then not be skipped). */
  deadLetter(item: T, error: unknown, attempts: number): Promise<boolean>;
  /** Failures that are not the items' fault: never dead-lettered. */
  isTransient(error: unknown): boolean;
  /** False once the consumer stops or the partition was sought. */
  isLive(): boolean;
  /** Told when a group keeps failing and is about to be split. */
  onSplit?(items: T[], error: unknown): void;
}

/**
 * Processes consecutive items so that every item is either handled exactly once by a successful
 * handler call or dead-lettered, in order:
 * 1. the whole group gets `maxAttempts` tries;
 * 2. if it keeps failing it is bisected: each half gets one try (the failure was already retried),
 *    recursing on failure; a single item gets the full `maxAttempts` and is then dead-lettered.
 * This finds k poison items among n in O(k·log n) handler calls. The `attempts` reported to
 * `deadLetter` counts every handler call that included the item.
 *
 * Stops early with 'paused' on a transient error or a failed dead-letter write (everything before
 * has been `succeeded`), or with 'interrupted' when `isLive()` turns false.
 */
export async function processWithIsolation<T>(
  items: T[],
  maxAttempts: number,
  steps: IsolationSteps<T>,
): Promise<Outcome> {
  return handleGroup(items, 0, maxAttempts, maxAttempts, steps);
}

async function handleGroup<T>(
  items: T[],
  attemptsSoFar: number,
  attempts: number,
  maxAttempts: number,
  steps: IsolationSteps<T>,
): Promise<Outcome> {
  if (items.length === 0) return 'done';
  const result = await steps.attempt(items, attempts);
  if (result.ok) {
    await steps.succeeded(items);
    return 'done';
  }
  if (result.interrupted) return 'interrupted';
  if (steps.isTransient(result.error)) return 'paused';
  const spent = attemptsSoFar + result.attempts;
  const [only] = items;
  if (items.length === 1 && only !== undefined) {
    if (!(await steps.deadLetter(only, result.error, spent))) return 'paused';
    await steps.succeeded(items);
    return 'done';
  }
  steps.onSplit?.(items, result.error);
  for (const half of halves(items)) {
    if (!steps.isLive()) return 'interrupted';
    const outcome = await handleGroup(half, spent, half.length === 1 ? maxAttempts : 1, maxAttempts, steps);
    if (outcome !== 'done') return outcome;
  }
  return 'done';
}
