/** What applying a group returned: the counter's value after the group's sum, and how it was stored. */
export interface GroupOutcome<P> {
  value: number;
  path: P;
}

/** Applies one group's summed delta (never 0) as ONE increment; `requests` is how many it carries. */
export type ApplyGroup<P> = (name: string, delta: number, requests: number) => Promise<GroupOutcome<P>>;

interface Member<P> {
  delta: number;
  resolve: (outcome: GroupOutcome<P>) => void;
  reject: (err: unknown) => void;
}

interface Group<P> {
  name: string;
  sum: number;
  members: Member<P>[];
}

/**
 * Coalesces increments of the same counter that arrive in the same event-loop turn into one:
 * one idempotent Redis script, one Kafka event (one event id) and one writer row update carry them
 * all, and each caller gets the value "after its own delta" (the group's value minus the deltas
 * that follow it in the group). A hot counter taking hundreds of increments per turn then costs
 * one round trip per turn instead of one per request.
 *
 * Increments and decrements are grouped apart, so a group's sum is never 0 and the values a group
 * reports move in one direction; a group is closed before its |sum| would exceed `maxAbsDelta`
 * (what one event may carry). The group's fate is every member's: all succeed with the same
 * path, or all fail with the same error. A group is applied at `setImmediate`, after every request
 * read in the current poll phase has joined it.
 */
export class IncrementCoalescer<P> {
  private open = new Map<string, Group<P>>();
  private closed: Group<P>[] = [];
  private scheduled = false;

  constructor(
    private readonly apply: ApplyGroup<P>,
    private readonly maxAbsDelta: number,
  ) {}

  /** Adds `delta` (non-zero, |delta| ≤ maxAbsDelta) to `name`; resolves with the value after it. */
  add(name: string, delta: number): Promise<GroupOutcome<P>> {
    if (delta === 0 || !Number.isSafeInteger(delta) || Math.abs(delta) > this.maxAbsDelta)
      return Promise.reject(new RangeError(`delta must be a non-zero integer within ±${this.maxAbsDelta}`));
    const key = delta > 0 ? `+${name}` : `-${name}`;
    let group = this.open.get(key);
    if (group !== undefined && Math.abs(group.sum + delta) > this.maxAbsDelta) {
      this.closed.push(group);
      group = undefined;
    }
    if (group === undefined) {
      group = { name, sum: 0, members: [] };
      this.open.set(key, group);
    }
    group.sum += delta;
    const promise = new Promise<GroupOutcome<P>>((resolve, reject) => {
      group.members.push({ delta, resolve, reject });
    });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return promise;
  }

  private flush(): void {
    this.scheduled = false;
    const groups = [...this.closed, ...this.open.values()];
    this.closed = [];
    this.open = new Map();
    for (const group of groups) void this.run(group);
  }

  private async run(group: Group<P>): Promise<void> {
    let outcome: GroupOutcome<P>;
    try {
      outcome = await this.apply(group.name, group.sum, group.members.length);
    } catch (err) {
      for (const member of group.members) member.reject(err);
      return;
    }
    // Members count in arrival order: each one's value includes the deltas up to its own.
    const before = outcome.value - group.sum;
    let applied = 0;
    for (const member of group.members) {
      applied += member.delta;
      member.resolve({ value: before + applied, path: outcome.path });
    }
  }
}
