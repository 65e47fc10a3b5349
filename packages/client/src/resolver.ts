import { promises as dns } from 'node:dns'
import { isIP } from 'node:net'
import { fromPlatformError } from '@srpc/core'
import { Code, formatMs, RpcError } from '@srpc/protocol'
import type { Lookup, Target } from './options'

/** One address to dial: an IP (or a name we could not resolve ourselves) and a port. */
export interface ResolvedAddress {
  /** `host:port` (`[v6]:port`): identifies the server in events and stats. */
  readonly key: string
  readonly host: string
  readonly port: number
  /** TLS server name: the DNS name the address came from, so certificates are checked against it. */
  readonly servername: string | undefined
}

export interface Resolution {
  addresses: ResolvedAddress[]
  /** The first lookup that failed; its target keeps the addresses it had before. */
  error: RpcError | undefined
}

const defaultLookup: Lookup = (hostname) => dns.lookup(hostname, { all: true })

/**
 * Turns the pool's targets into addresses: an IP stays as it is, a DNS name becomes every address
 * it resolves to (a Kubernetes headless service: one per pod). A failed lookup keeps the last
 * good answer for that name, so a DNS hiccup does not empty the pool.
 */
export class Resolver {
  readonly targets: readonly Target[]
  /** True when some target is a name, so looking it up again can change the answer. */
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
    this.#last = targets.map((t) => (isIP(t.host) === 0 ? undefined : [addressOf(t.host, t.port, undefined)]))
  }

  /** What is known without a lookup: the IP targets, and the last answer for each name. */
  known(): ResolvedAddress[] {
    const byKey = new Map<string, ResolvedAddress>()
    for (const list of this.#last) for (const address of list ?? []) byKey.set(address.key, address)
    return [...byKey.values()]
  }

  /** Never rejects: a failed lookup is reported in `error`. */
  async resolve(): Promise<Resolution> {
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
    return { addresses: this.known(), error }
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

function addressOf(host: string, port: number, servername: string | undefined): ResolvedAddress {
  const key = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
  return { key, host, port, servername }
}
