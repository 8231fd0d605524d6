import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A server listening: where, and how to close it. */
export interface ListeningServer {
  /** The port bound (the one asked for, or the one the system picked for port 0). */
  readonly port: number
  readonly host: string
  /** `http://host:port`, with loopback in place of an all-interfaces host, so it can be fetched locally. */
  readonly url: string
  /** Stops listening and closes every connection, idle or not; idempotent (a bound function). */
  readonly close: () => Promise<void>
}

/**
 * Binds `server` to `host:port` and resolves once it listens (rejects with the bind error: a port in use,
 * an unknown interface). Both Detour HTTP surfaces — the worker's metrics/admin endpoint and the admin
 * console — listen through this, so they close the same way: `close()` drops keep-alive connections at
 * once instead of waiting for their idle timeout.
 */
export async function listenHttp(server: Server, port: number, host: string): Promise<ListeningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = (server.address() as AddressInfo).port
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  let closing: Promise<void> | undefined
  return {
    port: bound,
    host,
    url: `http://${urlHost}:${bound}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })),
  }
}
