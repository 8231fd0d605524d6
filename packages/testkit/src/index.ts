export { startBroker, resolveBrokerMode } from './start-broker.js'
export type { StartBrokerOptions } from './start-broker.js'
export { EmbeddedBroker } from './embedded/embedded-broker.js'
export type { EmbeddedBrokerOptions } from './embedded/embedded-broker.js'
export { loadMockLibrary, locateLibrdkafka } from './embedded/librdkafka.js'
export { KafkaAdminBroker } from './external/kafka-admin-broker.js'
export { dockerAvailable, startContainerBroker, KAFKA_IMAGE } from './container/kafka-container.js'
export { ApiKeys, KafkaErrorCodes, BrokerCapabilityError } from './types.js'
export type {
  BrokerMode,
  TestBroker,
  TopicSettings,
  BrokerTopicAdmin,
  BrokerCapabilities,
} from './types.js'
export { randomName, testKafka, fastConsumerConfig, collectMessages, waitFor, sleep } from './helpers.js'
export type { CollectedMessage } from './helpers.js'
