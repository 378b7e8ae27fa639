import type { Message } from 'kafkajs';
import { partitionFor } from './partition.js';

/**
 * Several JSON events in ONE Kafka record: `{"v":2,"events":[<event>,<event>,…]}`.
 *
 * Why: a distinct-name counter increment is one small event, and kafkajs, the broker and the
 * writer all pay per record. Measured with the GroupCommitProducer against the local broker, 100
 * concurrent senders: 23.1 µs of producer CPU per event sent one per record, 9.0 µs three per
 * record. Records are packed per partition (all events of a record map to the partition its key
 * does), so a consumer sees every event in the partition of its own key, in order per key.
 */
export interface PackingRule {
  /** Events per record at most (default 500: ~60 kB for counter deltas, far below message.max.bytes). */
  maxPerRecord?: number;
}

const PREFIX = '{"v":2,"events":[';
const SUFFIX = ']}';

/** The record value holding `values` (each already a JSON document). */
export function packJsonValues(values: readonly string[]): string {
  return `${PREFIX}${values.join(',')}${SUFFIX}`;
}

/**
 * The events of a parsed record value: the array of a packed record, or the value itself (a record
 * holding one event, as every producer wrote before packing existed). Throws when a packed
 * record's `events` is not an array.
 */
export function unpackJsonValue(parsed: unknown): unknown[] {
  if (typeof parsed === 'object' && parsed !== null && (parsed as { v?: unknown }).v === 2) {
    const events = (parsed as { events?: unknown }).events;
    if (!Array.isArray(events)) throw new TypeError('packed record without an events array');
    return events;
  }
  return [parsed];
}

/** A queued message of one topic, as the producer sees it. */
export interface PackableMessage {
  message: Message;
}

/**
 * Builds the records of one topic's batch: messages whose key is a string and value a string are
 * grouped by the partition of their key (`partitionCount` partitions, kafkajs' default partitioner)
 * in order of first appearance, and each group of more than one becomes one packed record keyed by
 * its first message's key; anything else is sent as it is. Returns the records to send and, for
 * each input message (same index), the record that carries it.
 */
export function packMessages(
  entries: readonly PackableMessage[],
  partitionCount: number,
  rule: PackingRule,
): { records: Message[]; recordOf: Message[] } {
  const maxPerRecord = rule.maxPerRecord ?? 500;
  // A chunk is one future record: its first message and the values and input indexes it carries.
  interface Chunk {
    first: Message;
    values: string[];
    indexes: number[];
  }
  const open = new Map<number, Chunk>();
  const order: Chunk[] = [];
  entries.forEach(({ message }, index) => {
    const { key, value } = message;
    if (typeof key !== 'string' || typeof value !== 'string' || message.headers !== undefined) {
      order.push({ first: message, values: [], indexes: [index] }); // sent as it is
      return;
    }
    const partition = partitionFor(key, partitionCount);
    const current = open.get(partition);
    if (current !== undefined && current.values.length < maxPerRecord) {
      current.values.push(value);
      current.indexes.push(index);
      return;
    }
    const chunk: Chunk = { first: message, values: [value], indexes: [index] };
    open.set(partition, chunk);
    order.push(chunk);
  });
  const records: Message[] = [];
  const recordOf: Message[] = new Array<Message>(entries.length);
  for (const { first, values, indexes } of order) {
    const record = values.length > 1 ? { key: first.key, value: packJsonValues(values) } : first;
    records.push(record);
    for (const i of indexes) recordOf[i] = record;
  }
  return { records, recordOf };
}
