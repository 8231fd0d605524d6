export { HeartbeatLease } from './heartbeat-lease.js'
