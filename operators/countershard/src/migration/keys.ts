/**
 * How the mover recognises the counter service's keys (services/counter: keys.ts, uniques-store.ts,
 * presence-store.ts). Every data key carries its slot as hash tag right after the prefix.
 */
export type KeyKind =
  | { kind: 'counter'; slot: number }
  | { kind: 'unique'; slot: number; group: string; part: 'set' | 'hll' | 'marker' }
  | { kind: 'presence'; slot: number }
  | { kind: 'move-record'; slot: number; token: string }
  /** The pods' marker beside a counter's first migration partial (see {@link partialMarker}). */
  | { kind: 'partial-marker'; slot: number }
  | { kind: 'other'; slot: number | undefined };

const TAGGED = /^([a-z]+):\{(\d+)\}:(.*)$/s;
const UNIQUE_PART = /^(.*):([shg]):(\d{4}-\d{2}-\d{2})$/s;
const RECORD = /^([0-9a-f]{8,}):k$/;

/** Classifies a key by name. `ctr:` keys are counter hashes or pending sets: TYPE tells them apart. */
export function classifyKey(key: string): KeyKind {
  const match = TAGGED.exec(key);
  if (match === null) return { kind: 'other', slot: undefined };
  const [, prefix, slotText, rest = ''] = match;
  const slot = Number(slotText);
  switch (prefix) {
    case 'ctr':
      return { kind: 'counter', slot };
    case 'ctrt':
      return { kind: 'partial-marker', slot };
    case 'pr':
      return { kind: 'presence', slot };
    case 'uq': {
      const part = UNIQUE_PART.exec(rest);
      if (part === null) return { kind: 'other', slot };
      const letter = part[2];
      return {
        kind: 'unique',
        slot,
        group: `${part[1] ?? ''}|${part[3] ?? ''}`,
        part: letter === 's' ? 'set' : letter === 'h' ? 'hll' : 'marker',
      };
    }
    case 'mv': {
      const record = RECORD.exec(rest);
      return record === null
        ? { kind: 'other', slot }
        : { kind: 'move-record', slot, token: record[1] ?? '' };
    }
    default:
      return { kind: 'other', slot };
  }
}

/** The keys of one counter move, all in the slot's hash tag. */
export function moveKeys(
  slot: number,
  token: string,
): { record: string; value: string; pending: string; done: string } {
  const base = `mv:{${slot}}:${token}`;
  return { record: `${base}:k`, value: `${base}:v`, pending: `${base}:p`, done: `mvd:{${slot}}:${token}` };
}

/**
 * The marker the counter pods write beside the first partial of a counter on a migrating slot's
 * new shard (`ctr:{slot}:<name>` → `ctrt:{slot}:<name>`; services/counter/src/scripts.ts).
 */
export function partialMarker(counterKey: string): string {
  if (!counterKey.startsWith('ctr:')) throw new RangeError(`not a counter key: ${counterKey}`);
  return `ctrt:${counterKey.slice('ctr:'.length)}`;
}

/** Where a set-like key is staged on the new shard before the union. */
export function stagingKey(slot: number, token: string): string {
  return `mvs:{${slot}}:${token}`;
}
