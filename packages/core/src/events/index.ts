export { SafeEmitter } from './safe-emitter.js'
