import { type Pool, RpcError } from '@srpc/client'
import { msgpack } from '@srpc/contract'
import { Code } from '@srpc/protocol'
import { UsageError } from './errors'
import { parseJson } from './output'

/** The route a server lists its routes on (`@srpc/server`'s reflection option). */
export const REFLECTION_LIST_ROUTE = '/srpc.reflection/list'

export type RouteKind = 'unary' | 'server-stream' | 'session'

/** One route as reflection describes it; every field but `route` may be missing. */
export interface ReflectedRoute {
  route: string
  kind?: RouteKind
  codec?: string
  input?: Record<string, unknown>
  output?: Record<string, unknown>
  description?: string
}

/**
 * Every route of the server, from `/srpc.reflection/list` (`{"routes":[…]}`). Fails NOT_FOUND,
 * with a message saying so, when the server does not serve reflection.
 */
export async function listRoutes(pool: Pool, timeout: number): Promise<ReflectedRoute[]> {
  let reply: Buffer
  try {
    reply = await pool.call(REFLECTION_LIST_ROUTE, '', { timeout })
  } catch (err) {
    if (RpcError.is(err, Code.NOT_FOUND)) {
      throw new RpcError(
        Code.NOT_FOUND,
        `the server does not serve reflection (${REFLECTION_LIST_ROUTE}): it is off in production unless the server sets reflection: true`,
        { cause: err },
      )
    }
    throw err
  }
  const parsed = parseJson(reply)?.value as { routes?: unknown } | undefined
  if (!parsed || !Array.isArray(parsed.routes)) {
    throw new RpcError(
      Code.DATA_LOSS,
      `${REFLECTION_LIST_ROUTE} answered something that is not {"routes":[…]}`,
    )
  }
  return parsed.routes.filter(
    (entry): entry is ReflectedRoute =>
      entry !== null && typeof entry === 'object' && typeof (entry as ReflectedRoute).route === 'string',
  )
}

/**
 * What reflection says about one route, or undefined when the server has no reflection or does
 * not list the route (calls then go out as raw bytes). Other failures (the server is down) throw:
 * the call would fail the same way.
 */
export async function describeRoute(
  pool: Pool,
  route: string,
  timeout: number,
): Promise<ReflectedRoute | undefined> {
  try {
    return (await listRoutes(pool, timeout)).find((entry) => entry.route === route)
  } catch (err) {
    if (RpcError.is(err, Code.NOT_FOUND) || RpcError.is(err, Code.DATA_LOSS)) return undefined
    throw err
  }
}

const COMMAND_OF: Record<RouteKind, string> = {
  unary: 'call',
  'server-stream': 'stream',
  session: 'session',
}

/** A usage error when reflection says the route is of another kind than the command makes. */
export function checkKind(info: ReflectedRoute | undefined, expected: RouteKind, command: string): void {
  if (info?.kind === undefined || info.kind === expected) return
  const right = COMMAND_OF[info.kind]
  throw new UsageError(
    `${info.route} is a ${info.kind} route (reflection says so): use \`srpc ${right}\`, not \`srpc ${command}\``,
  )
}

/** The MessagePack codec ignores the method's schema (only protobuf needs one). */
const NO_SCHEMA = undefined as unknown as Parameters<typeof msgpack.encode>[1]

/**
 * The request bytes for a route: with the `json` codec the input must be JSON and is sent
 * compact; with `msgpack` it must be JSON too and is encoded as MessagePack (as @srpc/contract's
 * codec does); with no codec (or `bytes`) the bytes go as they are. protobuf needs the message
 * type, which reflection does not carry: the CLI sends the bytes as given and says so.
 */
export function encodeInput(
  info: ReflectedRoute | undefined,
  bytes: Buffer,
  what: string,
  warn: (line: string) => void,
): Buffer {
  const codec = info?.codec
  if (codec === undefined || codec === 'bytes') return bytes
  if (codec === 'json' || codec === 'msgpack') {
    if (bytes.length === 0) return bytes
    const json = parseJson(bytes)
    if (json === undefined) {
      throw new UsageError(`${info!.route} takes JSON (codec ${codec}), and ${what} is not JSON`)
    }
    if (codec === 'json') return Buffer.from(JSON.stringify(json.value))
    const packed = msgpack.encode(json.value, NO_SCHEMA)
    return Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength)
  }
  warn(
    `note: ${info!.route} uses the ${codec} codec, which srpc cannot encode from JSON: ${what} is sent as raw bytes`,
  )
  return bytes
}

/**
 * A reply as the user reads it: a MessagePack one becomes its JSON text (Dates as ISO strings),
 * unless raw or hex bytes were asked for; anything else is shown as it came.
 */
export function decodeOutput(info: ReflectedRoute | undefined, bytes: Uint8Array, mode: string): Uint8Array {
  if (info?.codec !== 'msgpack' || mode === 'raw' || mode === 'hex' || bytes.length === 0) return bytes
  let value: unknown
  try {
    value = msgpack.decode(bytes, NO_SCHEMA)
  } catch (err) {
    throw new RpcError(Code.DATA_LOSS, `the reply is not valid MessagePack: ${(err as Error).message}`)
  }
  return Buffer.from(JSON.stringify(value) ?? 'null')
}
