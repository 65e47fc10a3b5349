import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy on 127.0.0.1 that sits between a client and a server in tests and misbehaves on
 * demand: forward, cut every connection (RST), black-hole (keep sockets open, forward nothing),
 * refuse new connections, add latency, or cut a connection after it relayed N bytes (a reset, or an
 * end as when the server's process dies in the middle of a write).
 */
export class FaultProxy {
  #server: Server
  #target: { host: string; port: number }
  #pairs = new Set<[Socket, Socket]>()
  /** Bytes each connection may still relay before it is cut (cut-after mode), and how it is cut. */
  #budgets = new Map<[Socket, Socket], { left: number; end: boolean } | undefined>()
  #mode: 'forward' | 'blackhole' | 'refuse' = 'forward'
  #latency = 0
  #cutAfter: number | undefined
  port = 0
  /** Bytes relayed in both directions so far. */
  bytes = 0
  /** Connections that reached the proxy, refused ones included. */
  attempts = 0

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

  /** Delays every chunk by `ms` in each direction (order kept); 0 turns it off. */
  latency(ms: number): void {
    this.#latency = ms
  }

  /** Resets each connection once it relayed `bytes` more bytes (both directions); undefined turns it off. */
  cutAfter(bytes: number | undefined): void {
    this.#cutAfter = bytes
    for (const pair of this.#pairs)
      this.#budgets.set(pair, bytes === undefined ? undefined : { left: bytes, end: false })
  }

  /**
   * Ends each connection open now once it relayed `bytes` more bytes: the client gets them, then
   * a FIN (and the server a reset), as from a server process killed in the middle of a write.
   * Connections opened later are not cut.
   */
  endAfter(bytes: number): void {
    for (const pair of this.#pairs) this.#budgets.set(pair, { left: bytes, end: true })
  }

  async stop(): Promise<void> {
    this.cutAll()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #onClient(client: Socket): void {
    this.attempts++
    if (this.#mode === 'refuse') {
      client.resetAndDestroy()
      return
    }
    const upstream = connect(this.#target)
    const pair: [Socket, Socket] = [client, upstream]
    let ending = false
    this.#pairs.add(pair)
    this.#budgets.set(pair, this.#cutAfter === undefined ? undefined : { left: this.#cutAfter, end: false })
    const relay = (from: Socket, to: Socket) => {
      // Delayed chunks wait in order; one timer per direction at a time.
      const delayed: { due: number; chunk: Buffer }[] = []
      let timer: NodeJS.Timeout | undefined
      const write = (chunk: Buffer) => {
        if (to.destroyed) return
        if (!to.write(chunk)) {
          from.pause()
          to.once('drain', () => from.resume())
        }
      }
      const flush = () => {
        timer = undefined
        const now = performance.now()
        while (delayed.length > 0 && delayed[0].due <= now) write(delayed.shift()!.chunk)
        if (delayed.length > 0) timer = setTimeout(flush, delayed[0].due - now)
      }
      from.on('close', () => clearTimeout(timer))
      from.on('data', (chunk: Buffer) => {
        if (this.#mode === 'blackhole') return
        const budget = this.#budgets.get(pair)
        if (budget !== undefined && chunk.length >= budget.left) {
          // Relay what fits, then cut both sides mid-stream.
          if (budget.left > 0) write(chunk.subarray(0, budget.left))
          this.bytes += budget.left
          this.#pairs.delete(pair)
          if (budget.end) {
            // The client side closes in its own time: its FIN must not turn into a reset.
            ending = true
            client.end()
            upstream.resetAndDestroy()
          } else {
            client.resetAndDestroy()
            upstream.resetAndDestroy()
          }
          return
        }
        if (budget !== undefined) budget.left -= chunk.length
        this.bytes += chunk.length
        if (this.#latency === 0 && delayed.length === 0) return write(chunk)
        delayed.push({ due: performance.now() + this.#latency, chunk })
        timer ??= setTimeout(flush, this.#latency)
      })
    }
    relay(client, upstream)
    relay(upstream, client)
    const close = () => {
      this.#pairs.delete(pair)
      this.#budgets.delete(pair)
      if (!ending) client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
  }
}
