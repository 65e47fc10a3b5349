import { memoryTransportPair, type Transport } from '@srpc/core'
import { Code, RpcError } from '@srpc/protocol'
import { Server } from '@srpc/server'
import { afterEach, vi } from 'vitest'
import { ClientConnection, type ConnectionEvents } from '../src/connection'
import { type PoolOptions, type ResolvedPoolOptions, resolvePoolOptions } from '../src/options'
import type { ResolvedAddress } from '../src/resolver'
import type { ConnectFn } from '../src/subchannel'

/**
 * What a server at an address does with a connection attempt: `up` serves it (a real srpc
 * Server over an in-memory transport), `refuse` fails the attempt as ECONNREFUSED, `silent`
 * takes the connection and never says a word (a port that is not srpc, a hung process).
 */
export type ServerMode = 'up' | 'refuse' | 'silent'

/** One connection made through the network: the pool's real ClientConnection and the server's end. */
export class MemoryLink {
  constructor(
    readonly address: string,
    readonly connection: ClientConnection,
    readonly serverEnd: Transport,
  ) {}

  get state(): string {
    return this.connection.state
  }

  /** A call the server answers, so the pool counts the connection as one that worked. */
  answer(): Promise<Buffer> {
    return this.connection.call('/ok', Buffer.alloc(0), { timeout: 1000 })
  }

  /** The server closes the connection: in an orderly way (a FIN after what it wrote), or reset with `error`. */
  lose(error?: Error): void {
    if (error === undefined) this.serverEnd.close()
    else this.serverEnd.destroy(error)
  }
}

const live = new Set<MemoryNetwork>()

/** Closes, after each test of the file, every MemoryNetwork it made (servers and connections). */
export function closeNetworksAfterEach(): void {
  afterEach(async () => {
    for (const network of [...live]) await network.close()
  })
}

/**
 * Servers by address (`host:port`) for the pool's internals: `connect` is what a Subchannel or
 * LoadBalancer gets instead of `ClientConnection.connect`, and gives them real connections to real
 * servers over `memoryTransportPair()`, so HELLO, calls, GOAWAY and closes are srpc's own. Every
 * attempt is recorded with the (fake) time it was made. Meant for `useFakeClock()`: timers and
 * the clock are fake, while the memory transport delivers on the real `setImmediate`; `settle()`
 * lets both run without moving the clock.
 */
export class MemoryNetwork {
  readonly attempts: { address: string; at: number }[] = []
  readonly links: MemoryLink[] = []
  readonly options: ResolvedPoolOptions
  #modes = new Map<string, ServerMode>()
  #servers = new Map<string, Server>()

  constructor(options: Partial<PoolOptions> = {}) {
    this.options = resolvePoolOptions({ address: 'memory:1', tls: {}, healthCheck: false, ...options })
    live.add(this)
  }

  set(address: string, mode: ServerMode): this {
    this.#modes.set(address, mode)
    return this
  }

  /** The real server behind `address` (created on first use), to shut down or inspect. */
  server(address: string): Server {
    let server = this.#servers.get(address)
    if (server === undefined) {
      server = new Server()
      server.handle('/ok', () => 'ok')
      this.#servers.set(address, server)
    }
    return server
  }

  /** A new server at `address` from now on (a restarted process, a new cluster worker); the old one is left as it is. */
  replace(address: string): Server {
    this.#servers.delete(address)
    return this.server(address)
  }

  attemptsTo(address: string): number[] {
    return this.attempts.filter((a) => a.address === address).map((a) => Math.round(a.at))
  }

  open(address: string): MemoryLink[] {
    return this.links.filter((link) => link.address === address && link.state !== 'closed')
  }

  readonly connect: ConnectFn = (address: ResolvedAddress, signal: AbortSignal, events: ConnectionEvents) => {
    this.attempts.push({ address: address.key, at: performance.now() })
    if (signal.aborted) return Promise.reject(new RpcError(Code.CANCELLED, 'connection attempt cancelled'))
    const mode = this.#modes.get(address.key) ?? 'refuse'
    if (mode === 'refuse') {
      return Promise.reject(
        Object.assign(new Error(`connect ECONNREFUSED ${address.key}`), { code: 'ECONNREFUSED' }),
      )
    }
    const [clientEnd, serverEnd] = memoryTransportPair()
    if (mode === 'up') this.server(address.key).accept(serverEnd)
    else serverEnd.start({ onData() {}, onDrain() {}, onEnd: () => serverEnd.close(), onClose() {} })
    const connection = new ClientConnection(clientEnd, this.options, events, address.key)
    this.links.push(new MemoryLink(address.key, connection, serverEnd))
    return Promise.resolve(connection)
  }

  /** Every server and connection gone. */
  async close(): Promise<void> {
    live.delete(this)
    for (const link of this.links) link.serverEnd.destroy()
    await Promise.all([...this.#servers.values()].map((server) => server.destroy()))
  }
}

/**
 * Runs what is due now on the fake clock and lets the memory transports deliver (real event-loop
 * turns), a few rounds, without moving the clock: a HELLO, a call and its reply, a close.
 */
export async function settle(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await vi.advanceTimersByTimeAsync(0)
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

/**
 * Moves the fake clock by `ms` in steps of `step` ms, letting the memory transports deliver after
 * each step, as if the network took no time: timers still fire at their exact fake times.
 */
export async function advance(ms: number, step = 10): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    await vi.advanceTimersByTimeAsync(Math.min(step, ms - done))
    await settle(2)
  }
  await settle()
}
