export { createKafka, DEFAULT_KAFKA_RETRY } from './client.js';
export type { CreateKafkaOptions } from './client.js';
export { kafkaLevelFor, pinoLogCreator, pinoMethodFor } from './log-bridge.js';
export {
  KafkaError,
  KafkaUnavailableError,
  KafkaBackpressureError,
  KafkaAdminError,
  TransientHandlerError,
} from './errors.js';
export type { KafkaUnavailableReason } from './errors.js';
export { GroupCommitProducer } from './group-commit-producer.js';
export type {
  GroupCommitProducerOptions,
  GroupCommitProducerStats,
  KafkaProducerFactory,
  KafkaProducerPort,
  ProduceRecord,
  SendResult,
} from './group-commit-producer.js';
export { BatchConsumer } from './batch-consumer.js';
export type {
  AssignmentControl,
  BatchConsumerOptions,
  BatchHandler,
  PartitionBatch,
  TopicPartitionRef,
} from './batch-consumer.js';
export { ensureTopics, deleteTopics } from './topics.js';
export type { EnsureTopicsResult, TopicSpec } from './topics.js';
export { DLQ_HEADERS, dlqTopicFor, decodeMessage, decodeHeaders } from './messages.js';
export type { DecodedMessage } from './messages.js';
export { nextOffset, consumerLag } from './offsets.js';
export { DEFAULT_RETRY_POLICY, backoffDelay } from './batching.js';
export type { RetryPolicy } from './batching.js';
export { partitionFor } from './partition.js';
export { WriterBarrier } from './writer-barrier.js';
export type { BarrierOutcome, HighWatermarkSource, WriterBarrierOptions } from './writer-barrier.js';
