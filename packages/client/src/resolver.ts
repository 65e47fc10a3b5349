import { promises as dns } from 'node:dns'
import { isIP } from 'node:net'
import { fromPlatformError } from '@srpc/core'
import { Code, formatMs, RpcError } from '@srpc/protocol'
import type { Lookup, ResolvedPoolOptions, Target } from './options'

/** One address to dial: an IP (or a name we could not resolve ourselves) and a port. */
export interface ResolvedAddress {
  /** `host:port` (`[v6]:port`): identifies the server in events and stats. */
  readonly key: string
  readonly host: string
  readonly port: number
  /** TLS server name: the DNS name the address came from, so certificates are checked against it. */
  readonly servername: string | undefined
  /** Relative share (SRV weight): servers are ordered by weighted random choice; none or 0 come last. */
  readonly weight?: number
}

/**
 * Where the pool's servers are. Pass your own as the pool option `resolver` for service discovery
 * other than DNS (Consul, a config service, a Kubernetes API watch):
 *
 * ```ts
 * const resolver: Resolver = {
 *   dynamic: true,
 *   resolve: async () => (await registry.instances('orders')).map((i) => addressOf(i.ip, i.port, 'orders.internal')),
 * }
 * const pool = new Pool({ resolver, tls })
 * ```
 *
 * The pool calls `resolve()` when it starts, and, when `dynamic`, again every `resolveInterval`
 * ms and after a failed connection attempt (at most once per `backoff.initial`), one call at a
 * time. Servers that appear get connections; connections to servers that disappear drain. A
 * rejection is reported as an `error` event and the pool keeps the addresses it has.
 */
export interface Resolver {
  /** True when a later `resolve()` may answer differently, so the pool asks again. */
  readonly dynamic: boolean
  /** Every address to connect to now. An empty list keeps no server (calls wait or fail). */
  resolve(): Promise<ResolvedAddress[]>
  /**
   * Optional: the addresses known without waiting (dialled before the first `resolve()` answers),
   * and after a failed `resolve()` the best list left (the pool then takes it).
   */
  known?(): ResolvedAddress[]
  /**
   * Optional: the pool tells whether its last attempt to reach `address` worked. Return true
   * when that changes the addresses to use (an SRV resolver failing over to the next priority):
   * the pool then takes `known()` at once and resolves again soon.
   */
  reachability?(address: ResolvedAddress, reachable: boolean): boolean
}

/** A `ResolvedAddress` for `host:port`; `servername` is the name to check the certificate against. */
export function addressOf(host: string, port: number, servername?: string): ResolvedAddress {
  const key = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
  return { key, host, port, servername }
}

/** A fixed list of IP addresses: never looked up, never changes. */
export class StaticResolver implements Resolver {
  readonly dynamic = false
  #addresses: ResolvedAddress[]

  constructor(addresses: readonly ResolvedAddress[]) {
    this.#addresses = [...addresses]
  }

  known(): ResolvedAddress[] {
    return [...this.#addresses]
  }

  resolve(): Promise<ResolvedAddress[]> {
    return Promise.resolve(this.known())
  }
}

/** The pool's own resolver, or one for its `address`/`addresses`: static for IPs, DNS for names. */
export function resolverFor(options: ResolvedPoolOptions): Resolver {
  if (options.resolver !== undefined) return options.resolver
  if (options.targets.every((t) => isIP(t.host) !== 0)) {
    return new StaticResolver(options.targets.map((t) => addressOf(t.host, t.port)))
  }
  return new DnsResolver(options.targets, options.lookup, options.connectTimeout)
}

const defaultLookup: Lookup = (hostname) => dns.lookup(hostname, { all: true })

/**
 * DNS A/AAAA: an IP target stays as it is, a DNS name becomes every address it resolves to (a
 * Kubernetes headless service: one per pod). A failed lookup keeps the last good answer for that
 * name, so a DNS hiccup does not empty the pool: `resolve()` rejects with the first failure and
 * `known()` holds the fresh answers of the other names with the last good one of the failed name.
 */
export class DnsResolver implements Resolver {
  readonly targets: readonly Target[]
  readonly dynamic: boolean
  #lookup: Lookup
  #timeoutMs: number
  #last: (ResolvedAddress[] | undefined)[]

  /** `timeoutMs`: a lookup that has not answered by then counts as failed. */
  constructor(targets: readonly Target[], lookup: Lookup = defaultLookup, timeoutMs = 10_000) {
    this.targets = targets
    this.#lookup = lookup
    this.#timeoutMs = timeoutMs
    this.dynamic = targets.some((t) => isIP(t.host) === 0)
    this.#last = targets.map((t) => (isIP(t.host) === 0 ? undefined : [addressOf(t.host, t.port)]))
  }

  /** The IP targets, and the last answer for each name. */
  known(): ResolvedAddress[] {
    const byKey = new Map<string, ResolvedAddress>()
    for (const list of this.#last) for (const address of list ?? []) byKey.set(address.key, address)
    return [...byKey.values()]
  }

  async resolve(): Promise<ResolvedAddress[]> {
    let error: RpcError | undefined
    await Promise.all(
      this.targets.map(async (target, i) => {
        if (isIP(target.host) !== 0) return
        try {
          const found = await this.#lookupInTime(target.host)
          if (found.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' })
          this.#last[i] = found.map((a) => addressOf(a.address, target.port, target.host))
        } catch (err) {
          error ??= fromPlatformError(err, `cannot resolve ${target.host}`)
        }
      }),
    )
    if (error) throw error
    return this.known()
  }

  /** The lookup, or UNAVAILABLE if it does not answer within the timeout (a stuck resolver must not stall the pool). */
  async #lookupInTime(host: string): ReturnType<Lookup> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new RpcError(
              Code.UNAVAILABLE,
              `lookup of ${host} did not answer within ${formatMs(this.#timeoutMs)}`,
            ),
          ),
        this.#timeoutMs,
      )
    })
    try {
      return await Promise.race([this.#lookup(host), late])
    } finally {
      clearTimeout(timer)
    }
  }
}

export interface ResolveLoopHooks {
  /** A new list of addresses (the same list again is fine: the balancer ignores it). */
  addresses(addresses: readonly ResolvedAddress[]): void
  /** A `resolve()` failed; the pool keeps the addresses it has. */
  failed(error: RpcError): void
  /** A `resolve()` ended, either way: slots that waited for addresses dial now. */
  settled(): void
}

/**
 * Asks the resolver for addresses: once at start, then (dynamic resolvers) every `interval` ms
 * and after failures at most once per `minGap` ms, never two calls at a time.
 */
export class ResolveLoop {
  readonly resolver: Resolver
  /** The last `resolve()` failure, until one succeeds: what a slot reports when no address is known. */
  error: RpcError | undefined
  #interval: number
  #minGap: number
  #timeout: number
  #hooks: ResolveLoopHooks
  #resolving = false
  #stopped = false
  #timer: NodeJS.Timeout | undefined
  #last = Number.NEGATIVE_INFINITY

  /** `timeout`: a `resolve()` that has not answered by then counts as failed (UNAVAILABLE). */
  constructor(
    resolver: Resolver,
    timing: { interval: number; minGap: number; timeout: number },
    hooks: ResolveLoopHooks,
  ) {
    this.resolver = resolver
    this.#interval = timing.interval
    this.#minGap = timing.minGap
    this.#timeout = timing.timeout
    this.#hooks = hooks
  }

  /** A lookup is under way: a slot with no address waits for it instead of failing. */
  get resolving(): boolean {
    return this.#resolving
  }

  start(): void {
    if (this.resolver.dynamic || this.resolver.known === undefined) this.#resolve()
    if (this.resolver.dynamic) this.#arm()
  }

  /** After a failure, ask again (at most once per minGap). */
  soon(): void {
    if (this.resolver.dynamic && performance.now() - this.#last >= this.#minGap) this.#resolve()
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #resolve(): void {
    if (this.#resolving || this.#stopped) return
    this.#resolving = true
    this.#last = performance.now()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new RpcError(Code.UNAVAILABLE, `resolver did not answer within ${formatMs(this.#timeout)}`)),
        this.#timeout,
      )
    })
    // A custom resolver may throw instead of rejecting, or never answer: both are failures.
    Promise.race([new Promise<ResolvedAddress[]>((resolve) => resolve(this.resolver.resolve())), late])
      .then(
        (addresses) => {
          this.#resolving = false
          if (this.#stopped) return
          if (!Array.isArray(addresses)) {
            this.error = new RpcError(Code.INVALID_ARGUMENT, 'resolver.resolve() must resolve to an array')
            this.#hooks.failed(this.error)
            return
          }
          this.error = undefined
          // An address built by hand may lack its key: derive it as addressOf() would.
          this.#hooks.addresses(addresses.map((a) => (a.key ? a : addressOf(a.host, a.port, a.servername))))
        },
        (err: unknown) => {
          this.#resolving = false
          if (this.#stopped) return
          this.error = fromPlatformError(err, 'address lookup failed')
          this.#hooks.failed(this.error)
          const known = this.resolver.known?.()
          if (known !== undefined) this.#hooks.addresses(known)
        },
      )
      .finally(() => {
        clearTimeout(timer)
        if (!this.#stopped) this.#hooks.settled()
      })
      .catch((err: unknown) => this.#hooks.failed(RpcError.from(err)))
  }

  #arm(): void {
    this.#timer = setTimeout(() => {
      this.#resolve()
      this.#arm()
    }, this.#interval)
    this.#timer.unref()
  }
}
