/**
 * Reading the services' Prometheus metrics from the bench: one scrape (bounded), sums of a
 * metric's samples, and the writer's work over a load window — how many transactions it committed
 * and how many events they applied. Events per transaction is what the writer's (and MariaDB's)
 * CPU per request follows: each transaction costs six or seven round trips whatever its size.
 */

/** The text of `/metrics` on a local port (2 s timeout). */
export async function scrapeMetrics(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) });
  if (!response.ok) throw new Error(`/metrics on port ${port} answered ${response.status}`);
  return response.text();
}

/** Sums the samples of `metric` whose labels contain every `label="value"` pair of `match`. Pure. */
export function sumSamples(text: string, metric: string, match: readonly string[] = []): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const labels = line.slice(metric.length, line.lastIndexOf(' '));
    if (!match.every((pair) => labels.includes(pair))) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

/** Totals read from one scrape of the writer. */
export interface WriterTotals {
  /** Committed transactions. */
  commits: number;
  /** Partition batches those transactions carried. */
  batches: number;
  applied: number;
}

/** The writer's committed transactions, their partition batches and applied events in a scrape. Pure. */
export function parseWriterTotals(text: string): WriterTotals {
  return {
    commits: sumSamples(text, 'hyperscale_writer_commits_total'),
    batches: sumSamples(text, 'hyperscale_writer_transactions_total', ['outcome="commit"']),
    applied: sumSamples(text, 'hyperscale_writer_events_applied_total'),
  };
}

/** Scrapes the writer's totals. */
export async function scrapeWriterTotals(metricsPort: number): Promise<WriterTotals> {
  return parseWriterTotals(await scrapeMetrics(metricsPort));
}

/** `commits=… applied=… events_per_commit=… batches_per_commit=… commits_per_s=…` between two scrapes. */
export function formatWriterWindow(before: WriterTotals, after: WriterTotals, seconds: number): string {
  const commits = after.commits - before.commits;
  const batches = after.batches - before.batches;
  const applied = after.applied - before.applied;
  const per = (n: number) => (commits > 0 ? (n / commits).toFixed(1) : '0');
  return (
    `commits=${commits} applied=${applied} events_per_commit=${per(applied)} batches_per_commit=${per(batches)} ` +
    `commits_per_s=${(commits / seconds).toFixed(0)}`
  );
}
