import { Code, invalidOption, RpcError } from '@srpc/protocol'
import type { Context } from './context'
import type { Mux } from './mux'

/** What `server.health.set()` takes: whether a service (or `''`, the whole server) takes calls. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING'
/** What a watcher may be told: `SERVICE_UNKNOWN` for a service nobody `set()` (yet). */
export type WatchedStatus = ServingStatus | 'SERVICE_UNKNOWN'

/** The health routes, as `grpc.health.v1.Health/Check` and `/Watch`. */
export const HEALTH_CHECK_ROUTE = '/srpc.health/check'
export const HEALTH_WATCH_ROUTE = '/srpc.health/watch'

/** The route handlers, reaching the service's private state (set in HealthService's static block). */
let serveCheck: (health: HealthService, ctx: Context) => string
let serveWatch: (health: HealthService, ctx: Context) => Promise<void>

/** The longest service name a request may name, bytes: names are identifiers, not payloads. */
const MAX_SERVICE_NAME = 256

/**
 * The server's health, served as a protocol on every server (in the spirit of `grpc.health.v1`):
 * a status per service, `''` for the whole server (SERVING from the start). Read it with
 * `/srpc.health/check` (unary) or follow it with `/srpc.health/watch` (a server stream that
 * sends the current status, then each change).
 *
 * Wire format, JSON in UTF-8 both ways: the request is `{"service":"name"}` (empty, or `{}`,
 * means `""`); a check answers `{"status":"SERVING"}` or `{"status":"NOT_SERVING"}`, and
 * NOT_FOUND for a service never set; each watch chunk is `{"status":…}`, `SERVICE_UNKNOWN` for a
 * service never set.
 */
export class HealthService {
  readonly maxWatchers: number
  #statuses = new Map<string, ServingStatus>([['', 'SERVING']])
  /** Woken on every change; each watcher reads the newest status itself (bounded by maxWatchers). */
  #wakers = new Set<() => void>()
  #watchers = 0
  #terminal = false

  static {
    serveCheck = (health, ctx) => health.#check(ctx)
    serveWatch = (health, ctx) => health.#watch(ctx)
  }

  constructor(maxWatchers: number) {
    this.maxWatchers = maxWatchers
  }

  /**
   * Sets the status of `service` (`''`: the whole server). Ignored once `shutdown()` began: a
   * server going away stays NOT_SERVING.
   */
  set(service: string, status: ServingStatus): void {
    checkService(service)
    if (status !== 'SERVING' && status !== 'NOT_SERVING')
      invalidOption('status', `must be 'SERVING' or 'NOT_SERVING', got ${JSON.stringify(status)}`)
    if (this.#terminal || this.#statuses.get(service) === status) return
    this.#statuses.set(service, status)
    this.#wake()
  }

  /** The status of `service`, undefined for one never set. */
  get(service = ''): ServingStatus | undefined {
    return this.#statuses.get(service)
  }

  /** Forgets a service: checks answer NOT_FOUND, watchers are told SERVICE_UNKNOWN. `''` stays. */
  clear(service: string): void {
    checkService(service)
    if (service === '' || this.#terminal || !this.#statuses.delete(service)) return
    this.#wake()
  }

  /** Every service set, with its status. */
  list(): Record<string, ServingStatus> {
    return Object.fromEntries(this.#statuses)
  }

  /** Watch streams open right now. */
  get watchers(): number {
    return this.#watchers
  }

  /**
   * Every service NOT_SERVING, for good (later `set()` calls are ignored). The server calls it
   * first thing in `shutdown()`, so balancers stop sending before the drain.
   */
  shutdown(): void {
    if (this.#terminal) return
    for (const service of this.#statuses.keys()) this.#statuses.set(service, 'NOT_SERVING')
    this.#terminal = true
    this.#wake()
  }

  #wake(): void {
    for (const wake of this.#wakers) wake()
  }

  /** `/srpc.health/check` */
  #check(ctx: Context): string {
    const service = serviceOf(ctx.payload)
    const status = this.#statuses.get(service)
    if (status === undefined) throw new RpcError(Code.NOT_FOUND, `unknown service ${JSON.stringify(service)}`)
    return statusMessage(status)
  }

  /**
   * `/srpc.health/watch`: the current status now, then each change. Only the newest status
   * waits for a slow reader (older ones it never read are dropped: it learns the state, not every
   * step). Ends with the last status when the server shuts down, or when the client cancels.
   */
  async #watch(ctx: Context): Promise<void> {
    const service = serviceOf(ctx.payload)
    if (this.#watchers >= this.maxWatchers)
      throw new RpcError(Code.RESOURCE_EXHAUSTED, `more than ${this.maxWatchers} health watchers`)
    const stream = ctx.stream()
    let wake: () => void = noop
    let changed = true
    const waker = () => {
      changed = true
      wake()
    }
    // The end of the call or the start of a shutdown counts as a change: the loop looks again.
    const onEnd = waker
    this.#watchers++
    this.#wakers.add(waker)
    ctx.signal.addEventListener('abort', onEnd)
    ctx.shutdownSignal.addEventListener('abort', onEnd)
    try {
      let sent: WatchedStatus | undefined
      while (!ctx.signal.aborted) {
        if (!changed) {
          // Woken by a change, the end of the call, or a shutdown (which set NOT_SERVING first).
          await new Promise<void>((resolve) => {
            wake = resolve
          })
          wake = noop
          continue
        }
        changed = false
        const status: WatchedStatus = this.#statuses.get(service) ?? 'SERVICE_UNKNOWN'
        const last = ctx.shutdownSignal.aborted
        if (status !== sent || last) {
          sent = status
          await stream.writeChunk(statusMessage(status), last)
        }
        if (last) return
      }
    } finally {
      this.#watchers--
      this.#wakers.delete(waker)
      ctx.signal.removeEventListener('abort', onEnd)
      ctx.shutdownSignal.removeEventListener('abort', onEnd)
    }
  }
}

/** Registers the health routes on `mux`, with their kinds (reflection lists them). */
export function registerHealth(mux: Mux, health: HealthService): void {
  mux.handle(HEALTH_CHECK_ROUTE, (ctx) => serveCheck(health, ctx), {
    kind: 'unary',
    codec: 'json',
    input: REQUEST_SCHEMA,
    output: statusSchema(['SERVING', 'NOT_SERVING']),
    description: 'Health of a service ("" for the whole server)',
  })
  mux.handle(HEALTH_WATCH_ROUTE, (ctx) => serveWatch(health, ctx), {
    kind: 'server-stream',
    codec: 'json',
    input: REQUEST_SCHEMA,
    output: statusSchema(['SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN']),
    description: 'The health of a service now, then each change',
  })
}

const REQUEST_SCHEMA = Object.freeze({
  type: 'object',
  properties: { service: { type: 'string', maxLength: MAX_SERVICE_NAME } },
  additionalProperties: false,
})

function statusSchema(values: string[]): Record<string, unknown> {
  return {
    type: 'object',
    properties: { status: { enum: values } },
    required: ['status'],
  }
}

const MESSAGES = new Map<WatchedStatus, string>(
  (['SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const).map((status) => [
    status,
    JSON.stringify({ status }),
  ]),
)

function statusMessage(status: WatchedStatus): string {
  return MESSAGES.get(status)!
}

/** The service a request names: `''` for an empty payload or `{}`; INVALID_ARGUMENT otherwise. */
export function serviceOf(payload: Buffer): string {
  if (payload.length === 0) return ''
  if (payload.length > MAX_SERVICE_NAME + 64)
    throw new RpcError(Code.INVALID_ARGUMENT, 'health request too large')
  let request: unknown
  try {
    request = JSON.parse(payload.toString('utf8'))
  } catch {
    throw new RpcError(Code.INVALID_ARGUMENT, 'health request must be JSON such as {"service":""}')
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request))
    throw new RpcError(Code.INVALID_ARGUMENT, 'health request must be an object such as {"service":""}')
  const service = (request as { service?: unknown }).service ?? ''
  if (typeof service !== 'string' || service.length > MAX_SERVICE_NAME)
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `service must be a string of at most ${MAX_SERVICE_NAME} characters`,
    )
  return service
}

function checkService(service: string): void {
  if (typeof service !== 'string' || service.length > MAX_SERVICE_NAME)
    invalidOption('service', `must be a string of at most ${MAX_SERVICE_NAME} characters`)
}

function noop(): void {}
