import { Server, type ServerOptions, type WebSocketListenOptions } from '@srpc/server'
import { type SelfSignedResult, selfSigned } from '@srpc/tlsutil'
import WebSocket from 'ws'
import { RpcError, WebClient, type WebClientOptions, type WebSocketConstructor } from '../src/index'

let material: Promise<SelfSignedResult> | undefined

/** One certificate for the whole test file. */
export function certificates(): Promise<SelfSignedResult> {
  material ??= selfSigned(['127.0.0.1', 'localhost'])
  return material
}

/** Node 20 has no global WebSocket: `ws`, trusting the test certificate (verification stays on). */
export async function trustingWebSocket(): Promise<WebSocketConstructor> {
  const { clientOptions } = await certificates()
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca: clientOptions.ca })
    }
  }
  return TrustingWebSocket as unknown as WebSocketConstructor
}

/** Servers listening for WebSockets and the clients of a test, torn down afterwards. */
export class Harness {
  #servers: Server[] = []
  #clients: WebClient[] = []

  async server(
    routes: (server: Server) => void,
    options: Partial<ServerOptions> = {},
    listen: WebSocketListenOptions = {},
  ): Promise<{ server: Server; url: string; port: number }> {
    const { serverOptions } = await certificates()
    const server = new Server({ address: '127.0.0.1:0', tls: serverOptions, ...options })
    routes(server)
    this.#servers.push(server)
    const { url, port } = await server.listenWebSocket(listen)
    return { server, url, port }
  }

  async client(url: string, options: Partial<WebClientOptions> = {}): Promise<WebClient> {
    const client = new WebClient({ url, WebSocket: await trustingWebSocket(), ...options })
    this.#clients.push(client)
    return client
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.#clients.splice(0).map((c) => c.destroy()))
    await Promise.all(this.#servers.splice(0).map((s) => s.shutdown({ timeout: 200 })))
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The RpcError `promise` rejected with; fails the test if it resolved or rejected with anything else. */
export function errorOf(promise: Promise<unknown>): Promise<RpcError> {
  return promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${String(value)}`)
    },
    (err: unknown) => {
      if (!(err instanceof RpcError)) throw err
      return err
    },
  )
}

/** Resolves with the signal's reason once it aborts. */
export function aborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason)
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason)))
}

export const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes)
