import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy on 127.0.0.1 that sits between a client and a server in tests and misbehaves on
 * demand: forward, cut every connection (RST), black-hole (keep sockets open, forward nothing),
 * or refuse new connections.
 */
export class FaultProxy {
  #server: Server
  #target: { host: string; port: number }
  #pairs = new Set<[Socket, Socket]>()
  #mode: 'forward' | 'blackhole' | 'refuse' = 'forward'
  port = 0
  /** Bytes relayed in both directions so far. */
  bytes = 0

  constructor(targetPort: number, targetHost = '127.0.0.1') {
    this.#target = { host: targetHost, port: targetPort }
    this.#server = createServer((client) => this.#onClient(client))
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  get connections(): number {
    return this.#pairs.size
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.port = (this.#server.address() as AddressInfo).port
    return this
  }

  /** Resets every connection (RST on both sides). */
  cutAll(): void {
    for (const [a, b] of this.#pairs) {
      a.resetAndDestroy()
      b.resetAndDestroy()
    }
    this.#pairs.clear()
  }

  /** New connections go to another port from now on; existing ones stay where they are. */
  retarget(port: number): void {
    this.#target = { ...this.#target, port }
  }

  /** Stops forwarding in both directions without closing anything. */
  blackhole(): void {
    this.#mode = 'blackhole'
  }

  /** New connections are closed at once. */
  refuse(): void {
    this.#mode = 'refuse'
  }

  forward(): void {
    this.#mode = 'forward'
  }

  async stop(): Promise<void> {
    this.cutAll()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #onClient(client: Socket): void {
    if (this.#mode === 'refuse') {
      client.resetAndDestroy()
      return
    }
    const upstream = connect(this.#target)
    const pair: [Socket, Socket] = [client, upstream]
    this.#pairs.add(pair)
    const relay = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (this.#mode === 'blackhole') return
        this.bytes += chunk.length
        if (!to.write(chunk)) {
          from.pause()
          to.once('drain', () => from.resume())
        }
      })
    relay(client, upstream)
    relay(upstream, client)
    const close = () => {
      this.#pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  }
}
