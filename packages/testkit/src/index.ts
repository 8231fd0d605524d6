export { startBroker, resolveBrokerMode, startSharedBroker, SHARED_BROKER_ENV } from './start-broker.js'
export type { StartBrokerOptions, BrokerNeed, BrokerChoice, SharedBrokerInfo } from './start-broker.js'
export { EmbeddedBroker } from './embedded/embedded-broker.js'
export type { EmbeddedBrokerOptions } from './embedded/embedded-broker.js'
export { loadMockLibrary, locateLibrdkafka } from './embedded/librdkafka.js'
export { KafkaAdminBroker } from './external/kafka-admin-broker.js'
export { AdminTopics } from './admin/admin-topics.js'
export { KafkaCluster } from './kafka/kafka-cluster.js'
export type { KafkaClusterOptions } from './kafka/kafka-cluster.js'
export { KAFKA_VERSION, kafkaCacheDir, ensureKafkaDistribution, kafkaUnavailableReason } from './kafka/kafka-distribution.js'
export { dockerAvailable, startContainerBroker, KAFKA_IMAGE } from './container/kafka-container.js'
export { ApiKeys, KafkaErrorCodes, BrokerCapabilityError } from './types.js'
export type {
  BrokerMode,
  TestBroker,
  TopicSettings,
  BrokerTopicAdmin,
  BrokerCapabilities,
  ConsumerTiming,
} from './types.js'
export { randomName, testKafka, fastConsumerConfig, rejoinConsumerTiming, embeddedBrokerGap, collectMessages, waitFor, sleep, skippedBecause } from './helpers.js'
export type { CollectedMessage } from './helpers.js'
