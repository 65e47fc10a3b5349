import type { Attributes } from '@opentelemetry/api'
import { Code } from '@srpc/protocol'

/** `rpc.system` of every srpc span and measurement. */
export const RPC_SYSTEM = 'srpc'

/** What a route says in OpenTelemetry's RPC terms: `/pkg.Greeter/Hello` → `pkg.Greeter`, `Hello`. */
export interface RouteName {
  /** Everything before the last `/`, without the leading one; undefined for a flat route (`/echo`). */
  readonly service: string | undefined
  /** After the last `/`: `Hello`, `echo`. */
  readonly method: string
  /** The span name: `service/method`, or the method alone for a flat route. */
  readonly spanName: string
}

const names = new Map<string, RouteName>()
/** Routes are few and fixed; a client calling made-up routes must not grow the cache forever. */
const MAX_CACHED_ROUTES = 1024

export function routeName(route: string): RouteName {
  let name = names.get(route)
  if (name !== undefined) return name
  const path = route.startsWith('/') ? route.slice(1) : route
  const slash = path.lastIndexOf('/')
  const service = slash > 0 ? path.slice(0, slash) : undefined
  const method = slash >= 0 ? path.slice(slash + 1) : path
  name = { service, method, spanName: service === undefined ? method : `${service}/${method}` }
  if (names.size < MAX_CACHED_ROUTES) names.set(route, name)
  return name
}

/** The attributes a call's span and its measurements share (frozen: they are shared between calls). */
export function callAttributes(name: RouteName, extra: Attributes | undefined): Attributes {
  const attributes: Attributes = { 'rpc.system': RPC_SYSTEM, 'rpc.method': name.method, ...extra }
  if (name.service !== undefined) attributes['rpc.service'] = name.service
  return Object.freeze(attributes)
}

const CODES: ReadonlySet<string> = new Set(Object.values(Code))

/** The code of what ended a call: an RpcError's (one of the closed set), else UNKNOWN. */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && CODES.has(code) ? code : 'UNKNOWN'
}

/**
 * Codes that make a server span an error: the server failed, not the caller (as OpenTelemetry's
 * gRPC conventions say). On the client every code but OK is an error.
 */
export const SERVER_FAULTS: ReadonlySet<string> = new Set([
  'UNKNOWN',
  'DEADLINE_EXCEEDED',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
])
