import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy on 127.0.0.1 that limits each direction of each connection to `bytesPerSecond`
 * (a token bucket refilled every few ms): a slow link, as an IoT or cross-region one. It stops
 * reading the sending side while `maxQueued` bytes wait, so backpressure reaches the sender the
 * way a real link's would (a bounded buffer per direction). Counts the bytes it relayed each way.
 *
 * `bytesPerSecond` Infinity: no limit, the bytes are only counted (the bench's wire-bytes pass).
 *
 * Shared by the client's compression tests and the bench (the throttled-link scenarios h and the
 * wire-bytes counts), which import it by path like the root vitest config: it is test
 * infrastructure, not a package.
 */
export class LinkProxy {
  up = 0
  down = 0
  #server: Server
  #sockets = new Set<Socket>()
  #rate: number
  #maxQueued: number
  port = 0

  constructor(targetPort: number, bytesPerSecond: number, maxQueued = 64 * 1024) {
    this.#rate = bytesPerSecond
    this.#maxQueued = maxQueued
    this.#server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1')
      for (const s of [client, upstream]) {
        s.setNoDelay(true)
        this.#sockets.add(s)
        s.on('close', () => this.#sockets.delete(s))
        s.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      this.#pipe(client, upstream, (n) => {
        this.up += n
      })
      this.#pipe(upstream, client, (n) => {
        this.down += n
      })
    })
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.port = (this.#server.address() as AddressInfo).port
    return this
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #pipe(from: Socket, to: Socket, count: (bytes: number) => void): void {
    if (this.#rate === Number.POSITIVE_INFINITY) {
      from.on('data', (chunk: Buffer) => count(chunk.length))
      from.pipe(to)
      return
    }
    const queue: Buffer[] = []
    let queued = 0
    let tokens = 0
    let last = performance.now()
    let timer: NodeJS.Timeout | undefined
    /** The far side's socket is full: nothing moves until it drains. */
    let blocked = false
    const burst = Math.max(16 * 1024, this.#rate / 100)
    const pump = () => {
      timer = undefined
      if (blocked) return
      const now = performance.now()
      tokens = Math.min(burst, tokens + ((now - last) / 1000) * this.#rate)
      last = now
      while (queue.length > 0 && tokens >= 1) {
        const head = queue[0]!
        const n = Math.min(head.length, Math.floor(tokens))
        const piece = n === head.length ? queue.shift()! : head.subarray(0, n)
        if (n < head.length) queue[0] = head.subarray(n)
        tokens -= n
        queued -= n
        count(n)
        if (!to.write(piece)) {
          blocked = true
          to.once('drain', () => {
            blocked = false
            if (timer === undefined) pump()
          })
          break
        }
      }
      if (queued < this.#maxQueued && from.isPaused()) from.resume()
      if (queue.length > 0 && !blocked) timer = setTimeout(pump, 2)
    }
    from.on('data', (chunk: Buffer) => {
      queue.push(chunk)
      queued += chunk.length
      if (queued >= this.#maxQueued) from.pause()
      if (timer === undefined && !blocked) pump()
    })
    from.on('end', () => to.end())
    from.on('close', () => clearTimeout(timer))
  }
}
