/**
 * Offset arithmetic. Kafka offsets are int64 and kafkajs carries them as decimal strings; they are
 * computed here with BigInt so nothing is rounded past 2^53.
 */

/** The offset after `offset` — what a consumer commits / stores as "next offset to read". */
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

/** `offset + n` as a string. */
export function addOffset(offset: string, n: number): string {
  return (BigInt(offset) + BigInt(n)).toString();
}

/**
 * Messages not yet consumed when `nextOffsetToRead` is the consumer's position: high watermark
 * minus position, never negative (the position can pass a stale high watermark).
 */
export function consumerLag(highWatermark: string, nextOffsetToRead: string): number {
  const lag = BigInt(highWatermark) - BigInt(nextOffsetToRead);
  return lag > 0n ? Number(lag) : 0;
}

/** Where one message of a produced batch went; both fields absent if kafkajs did not say. */
export interface AssignedOffset {
  partition?: number;
  offset?: string;
}

/** The per-partition part of a produce acknowledgment (kafkajs `RecordMetadata`). */
export interface PartitionAck {
  topicName: string;
  partition: number;
  baseOffset?: string;
}

/**
 * Offsets of each message of one produce batch. Kafka appends the messages of a partition in the
 * order they were sent and acknowledges a partition with the offset of its first message
 * (`baseOffset`), so message i of partition p in send order has offset `baseOffset + i`.
 *
 * `sent[j]` is the topic and partition of the j-th message in batch order (`partition` undefined
 * if unknown). Messages whose partition is unknown, or whose partition is missing from `acks` or
 * has no `baseOffset` (acks=0), get no offset; the partition is kept whenever it is known.
 */
export function assignOffsets(
  sent: readonly { topic: string; partition: number | undefined }[],
  acks: readonly PartitionAck[],
): AssignedOffset[] {
  const base = new Map<string, bigint>();
  for (const ack of acks) {
    if (ack.baseOffset !== undefined && ack.baseOffset !== null && ack.baseOffset !== '') {
      base.set(partitionKey(ack.topicName, ack.partition), BigInt(ack.baseOffset));
    }
  }
  const seen = new Map<string, bigint>();
  return sent.map(({ topic, partition }) => {
    if (partition === undefined) return {};
    const key = partitionKey(topic, partition);
    const first = base.get(key);
    if (first === undefined) return { partition };
    const index = seen.get(key) ?? 0n;
    seen.set(key, index + 1n);
    return { partition, offset: (first + index).toString() };
  });
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
