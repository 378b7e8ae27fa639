/**
 * The last thing a process does before it exits: flush what the telemetry preload buffered. The
 * preload (`--import @hyperscale/platform/telemetry`) registers its flush here and
 * {@link GracefulShutdown} runs it after its own steps, so the spans of requests drained during
 * the shutdown are exported too. (Shutting the SDK down on the signal itself, as it first did, lost
 * them: a span started after the SDK stopped is never recorded.)
 */
const flushes = new Set<() => Promise<void>>();

/** Registers a flush for the end of the shutdown; returns its removal. */
export function onFinalFlush(flush: () => Promise<void>): () => void {
  flushes.add(flush);
  return () => flushes.delete(flush);
}

/** Runs every registered flush (each at most once per call) and resolves when all settled. */
export async function finalFlush(): Promise<void> {
  await Promise.allSettled([...flushes].map((flush) => flush()));
}
