import { Code, RpcError } from '@srpc/protocol'
import { afterEach, beforeEach, vi } from 'vitest'
import type { ClientConnection, ConnectionEvents } from '../src/connection'
import type { BalancerHooks } from '../src/load-balancer'
import type { ResolvedAddress } from '../src/resolver'
import type { ConnectFn } from '../src/subchannel'

/** What a fake server does with a connection attempt. */
export type FakeServerMode = 'up' | 'refuse'

/** A connection as the pool's internals see it: no socket, closes when told. */
export class FakeConnection {
  readonly address: string
  answered = true
  negotiated = Promise.resolve()
  state: 'ready' | 'draining' | 'closed' = 'ready'
  inFlight = 0
  features = new Set<string>()
  frames = { socket: { closed: false } }
  #events: ConnectionEvents

  constructor(address: string, events: ConnectionEvents) {
    this.address = address
    this.#events = events
  }

  get available(): boolean {
    return this.state === 'ready'
  }

  get hasCapacity(): boolean {
    return this.available
  }

  drain(): void {
    if (this.state !== 'ready') return
    this.state = 'draining'
    if (this.inFlight === 0) this.lose(undefined)
  }

  destroy(error: RpcError): void {
    this.lose(error)
  }

  /** The connection closes (`error` undefined: an orderly close). */
  lose(error: RpcError | undefined): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.frames.socket.closed = true
    this.#events.onClose(this as unknown as ClientConnection, error)
  }
}

/**
 * Servers by address (`host:port`), each up or refusing; `connect` is what the balancer gets
 * instead of `ClientConnection.connect`. Every attempt is recorded with the (fake) time it was made.
 */
export class FakeNetwork {
  readonly attempts: { address: string; at: number }[] = []
  readonly connections: FakeConnection[] = []
  #modes = new Map<string, FakeServerMode>()

  set(address: string, mode: FakeServerMode): this {
    this.#modes.set(address, mode)
    return this
  }

  attemptsTo(address: string): number[] {
    return this.attempts.filter((a) => a.address === address).map((a) => Math.round(a.at))
  }

  open(address: string): FakeConnection[] {
    return this.connections.filter((c) => c.address === address && c.state !== 'closed')
  }

  readonly connect: ConnectFn = (address: ResolvedAddress, signal: AbortSignal, events: ConnectionEvents) => {
    this.attempts.push({ address: address.key, at: performance.now() })
    if (signal.aborted) return Promise.reject(new RpcError(Code.CANCELLED, 'connection attempt cancelled'))
    if ((this.#modes.get(address.key) ?? 'refuse') === 'refuse') {
      return Promise.reject(
        Object.assign(new Error(`connect ECONNREFUSED ${address.key}`), { code: 'ECONNREFUSED' }),
      )
    }
    const connection = new FakeConnection(address.key, events)
    this.connections.push(connection)
    return Promise.resolve(connection as unknown as ClientConnection)
  }
}

/** What a LoadBalancer asks of its pool, answered by doing nothing: for tests of the balancer alone. */
export function idleHooks(): BalancerHooks {
  return {
    queued: 0,
    dispatch: () => {},
    failWaiting: () => {},
    rotated: () => {},
    roundFailed: () => {},
    changed: () => {},
  }
}

/**
 * Fake timers and clock for every test of the file, and Math.random at the top of every jitter
 * window (so delays are the backoff schedule's ceilings, and shuffles keep their order).
 */
export function useFakeClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    vi.spyOn(Math, 'random').mockReturnValue(0.999999)
  })
  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })
}
