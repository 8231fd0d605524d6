export { resolveGroupIds, resolveGroupIdFlags, legacyGroupArguments, DEFAULT_WORKER_GROUP_SUFFIX } from './group-ids.js'
export type { ResolvedGroupIds, GroupIdInput, GroupIdFlags } from './group-ids.js'
export { createKafka, checkConnectionSettings, SASL_MECHANISMS } from './kafka-connection.js'
export type { KafkaConnectionSettings, SaslMechanism } from './kafka-connection.js'
