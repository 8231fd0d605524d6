export { GroupStore } from './group-store.js'
export type { GroupStoreOptions, StoreStats } from './group-store.js'
