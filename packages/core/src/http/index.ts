export { listenHttp } from './listen.js'
export type { ListeningServer } from './listen.js'
