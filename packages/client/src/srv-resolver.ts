import { promises as dns, type SrvRecord } from 'node:dns'
import { fromPlatformError } from '@srpc/core'
import { Code, formatMs, invalidOption, positiveIntOption, RpcError } from '@srpc/protocol'
import type { Lookup } from './options'
import { addressOf, type ResolvedAddress, type Resolver } from './resolver'

/** Answers an SRV query (`dns.promises.resolveSrv` by default). */
export type ResolveSrv = (name: string) => Promise<readonly SrvRecord[]>

export interface SrvResolverOptions {
  /** The SRV query; inject one for tests or another DNS client. */
  resolveSrv?: ResolveSrv
  /** A/AAAA lookup of each target host (`dns.lookup(host, { all: true })` by default). */
  lookup?: Lookup
  /** A query or lookup that has not answered by then counts as failed, ms. */
  timeout?: number
  /**
   * Name the servers' certificates are checked against. Default: each target's own host name
   * (`orders-0.orders.shop.svc.cluster.local`); set the service name when the certificate is
   * issued to that instead.
   */
  servername?: string
}

/** An SRV target: the address with the record's priority and weight. */
export interface SrvAddress extends ResolvedAddress {
  readonly priority: number
  readonly weight: number
}

const DEFAULT_SRV_TIMEOUT = 10_000
const defaultResolveSrv: ResolveSrv = (name) => dns.resolveSrv(name)
const defaultLookup: Lookup = (hostname) => dns.lookup(hostname, { all: true })

/**
 * A resolver for a DNS SRV name (`_srpc._tcp.orders.shop.svc.cluster.local`), what Kubernetes
 * headless services and Consul publish: pass it as the pool's `resolver`.
 */
export function srvResolver(name: string, options: SrvResolverOptions = {}): SrvResolver {
  return new SrvResolver(name, options)
}

/**
 * DNS SRV: each record names a target host, a port, a priority and a weight. The pool gets the
 * targets of the lowest priority that has a reachable one: when the pool reports every target
 * of that group unreachable, the next group joins (the failed ones stay, so the pool keeps
 * probing them), and once one of them answers again the later group is dropped (its
 * connections drain). Weights ride along on the addresses: the pool orders its servers by
 * weighted random choice (RFC 2782), so across many clients each target's share of the
 * connections follows its weight.
 *
 * A failed or empty answer keeps the last good one (`known()`), as the A/AAAA resolver does; a
 * target whose lookup fails is left out of this answer while the others are used.
 */
export class SrvResolver implements Resolver {
  readonly name: string
  readonly dynamic = true
  #resolveSrv: ResolveSrv
  #lookup: Lookup
  #timeout: number
  #servername: string | undefined
  /** The last good answer, by priority (ascending). */
  #groups: SrvAddress[][] = []
  /** Keys the pool reported unreachable (its last attempt failed) and not since reached. */
  #down = new Set<string>()

  constructor(name: string, options: SrvResolverOptions = {}) {
    if (typeof name !== 'string' || name.length === 0 || name.includes(':'))
      invalidOption('name', `must be an SRV name like _srpc._tcp.orders.example.com, got ${String(name)}`)
    if (options.resolveSrv !== undefined && typeof options.resolveSrv !== 'function')
      invalidOption('resolveSrv', 'must be a function (name) => Promise<SrvRecord[]>')
    if (options.lookup !== undefined && typeof options.lookup !== 'function')
      invalidOption('lookup', 'must be a function (hostname) => Promise<{ address, family }[]>')
    this.name = name
    this.#resolveSrv = options.resolveSrv ?? defaultResolveSrv
    this.#lookup = options.lookup ?? defaultLookup
    this.#timeout = positiveIntOption('timeout', options.timeout, DEFAULT_SRV_TIMEOUT)
    this.#servername = options.servername
  }

  /** The addresses of the last good answer the pool should use now (see the class). */
  known(): SrvAddress[] {
    const out: SrvAddress[] = []
    for (const group of this.#groups) {
      out.push(...group)
      if (group.some((a) => !this.#down.has(a.key))) break
    }
    return out
  }

  async resolve(): Promise<SrvAddress[]> {
    let records: readonly SrvRecord[]
    try {
      records = await this.#inTime(this.#resolveSrv(this.name), `SRV query for ${this.name}`)
    } catch (err) {
      throw fromPlatformError(err, `cannot resolve SRV ${this.name}`)
    }
    // RFC 2782: a lone record with target "." says the service is decidedly not available here.
    const usable = Array.isArray(records) ? records.filter((r) => r.name !== '.' && r.name !== '') : []
    if (usable.length === 0) throw new RpcError(Code.UNAVAILABLE, `SRV ${this.name} has no targets`)

    const hosts = new Map<string, Promise<string[]>>()
    let firstError: unknown
    const found = await Promise.all(
      usable.map(async (record): Promise<SrvAddress[]> => {
        let ips = hosts.get(record.name)
        if (ips === undefined) {
          ips = this.#inTime(this.#lookup(record.name), `lookup of ${record.name}`).then((list) =>
            list.map((a) => a.address),
          )
          hosts.set(record.name, ips)
        }
        try {
          const servername = this.#servername ?? record.name
          return (await ips).map((ip) => ({
            ...addressOf(ip, record.port, servername),
            priority: record.priority,
            weight: record.weight,
          }))
        } catch (err) {
          firstError ??= err
          return []
        }
      }),
    )
    const byPriority = new Map<number, Map<string, SrvAddress>>()
    for (const address of found.flat()) {
      let group = byPriority.get(address.priority)
      if (group === undefined) {
        group = new Map()
        byPriority.set(address.priority, group)
      }
      if (!group.has(address.key)) group.set(address.key, address)
    }
    if (byPriority.size === 0)
      throw fromPlatformError(firstError, `cannot resolve the targets of SRV ${this.name}`)
    this.#groups = [...byPriority.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([, group]) => [...group.values()])
    const keys = new Set(this.#groups.flat().map((a) => a.key))
    for (const key of this.#down) if (!keys.has(key)) this.#down.delete(key)
    return this.known()
  }

  /**
   * The pool reports whether its last attempt to reach `address` worked. Returns true when that
   * changes which addresses the pool should use, so it asks `known()`/`resolve()` again.
   */
  reachability(address: ResolvedAddress, reachable: boolean): boolean {
    const before = this.known().length
    if (reachable) this.#down.delete(address.key)
    else this.#down.add(address.key)
    return this.known().length !== before
  }

  async #inTime<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new RpcError(Code.UNAVAILABLE, `${what} did not answer within ${formatMs(this.#timeout)}`)),
        this.#timeout,
      )
    })
    try {
      return await Promise.race([promise, late])
    } finally {
      clearTimeout(timer)
    }
  }
}
