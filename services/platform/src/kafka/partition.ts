import { Partitioners } from 'kafkajs';
import type { PartitionMetadata } from 'kafkajs';

const partitioner = Partitioners.DefaultPartitioner();
const metadataCache = new Map<number, PartitionMetadata[]>();

function metadataFor(partitionCount: number): PartitionMetadata[] {
  let metadata = metadataCache.get(partitionCount);
  if (metadata === undefined) {
    metadata = Array.from({ length: partitionCount }, (_, partitionId) => ({
      partitionErrorCode: 0,
      partitionId,
      leader: 0,
      replicas: [0],
      isr: [0],
      offlineReplicas: [],
    }));
    metadataCache.set(partitionCount, metadata);
  }
  return metadata;
}

/**
 * The partition kafkajs' default partitioner (Java-compatible murmur2, the one the
 * GroupCommitProducer uses) picks for a message keyed `key` on a topic with `partitionCount`
 * partitions. It calls kafkajs' own partitioner rather than re-implementing murmur2, so the two
 * cannot drift apart. For a keyed message the choice depends only on the key and the partition
 * count (never on leader availability), which is what makes it computable here.
 * @throws RangeError when `partitionCount` is not a positive integer.
 */
export function partitionFor(key: string, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) {
    throw new RangeError('partitionCount must be a positive integer');
  }
  return partitioner({
    topic: 'likes',
    partitionMetadata: metadataFor(partitionCount),
    message: { key, value: null },
  });
}
