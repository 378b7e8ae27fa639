import { describe, expect, it } from 'vitest';
import { formatWriterWindow, parseWriterTotals, sumSamples } from './metrics-scrape.js';

describe('parseWriterTotals', () => {
  it('reads commits, and sums committed partition batches over topics ignoring the other outcomes', () => {
    const text = [
      'hyperscale_writer_commits_total 40',
      '# HELP hyperscale_writer_transactions_total Transactions',
      '# TYPE hyperscale_writer_transactions_total counter',
      'hyperscale_writer_transactions_total{topic="counters.deltas.v1",outcome="commit"} 120',
      'hyperscale_writer_transactions_total{topic="counters.deltas.v1",outcome="retry"} 7',
      'hyperscale_writer_transactions_total{topic="likes.events.v1",outcome="commit"} 30',
      'hyperscale_writer_events_applied_total{topic="counters.deltas.v1"} 3000',
      'hyperscale_writer_events_applied_total{topic="likes.events.v1"} 60',
      'hyperscale_writer_events_applied_total_extra 99',
    ].join('\n');
    expect(parseWriterTotals(text)).toEqual({ commits: 40, batches: 150, applied: 3060 });
  });

  it('formats the window between two scrapes', () => {
    expect(
      formatWriterWindow(
        { commits: 10, batches: 20, applied: 100 },
        { commits: 210, batches: 620, applied: 5_100 },
        10,
      ),
    ).toBe('commits=200 applied=5000 events_per_commit=25.0 batches_per_commit=3.0 commits_per_s=20');
  });
});

describe('sumSamples', () => {
  it('sums every series of exactly that metric, not of metrics whose name it starts', () => {
    const text = [
      'hyperscale_operator_keys_moved_total{kind="counter"} 12',
      'hyperscale_operator_keys_moved_total{kind="set-like"} 3',
      'hyperscale_operator_keys_moved_total_created 1796539000',
      'hyperscale_operator_last_move_keys_per_second 2630.5',
    ].join('\n');
    expect(sumSamples(text, 'hyperscale_operator_keys_moved_total')).toBe(15);
    expect(sumSamples(text, 'hyperscale_operator_last_move_keys_per_second')).toBe(2630.5);
    expect(sumSamples(text, 'hyperscale_operator_keys_moved_total', ['kind="counter"'])).toBe(12);
  });
});
