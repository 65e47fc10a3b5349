import { Code, checkRoute, RpcError } from '@srpc/protocol'
import type { Codec } from './codec'
import { json } from './codecs/json'
import { isMessageSchema, isStandardSchema, type Schema } from './schema'

/** The three kinds of call, as `RouteInfo.kind` names them. */
export type MethodKind = 'unary' | 'server-stream' | 'session'

/** What `unary()`, `serverStream()` and `session()` take. */
export interface MethodOptions<I extends Schema, O extends Schema> {
  /** The request (unary, server stream) or each client message (session). */
  readonly input: I
  /** The reply (unary), each chunk (server stream) or each server message (session). */
  readonly output: O
  /** Overrides the contract's codec for this method. */
  readonly codec?: Codec
  /** One line for people reading a route list. */
  readonly description?: string
}

/** One method of a contract: its kind and schemas. */
export interface Method<
  K extends MethodKind = MethodKind,
  I extends Schema = Schema,
  O extends Schema = Schema,
> extends MethodOptions<I, O> {
  readonly kind: K
}

export type Methods = Record<string, Method>

/** A named set of methods, shared by server and client. Made by `contract()`. */
export interface Contract<N extends string = string, M extends Methods = Methods> {
  readonly name: N
  readonly methods: M
  /** The codec of methods that do not name their own (JSON unless the contract said otherwise). */
  readonly codec: Codec
}

function method<K extends MethodKind, I extends Schema, O extends Schema>(
  kind: K,
  options: MethodOptions<I, O>,
): Method<K, I, O> {
  if (options === null || typeof options !== 'object')
    throw new RpcError(Code.INVALID_ARGUMENT, `${kind}() needs { input, output }`)
  for (const side of ['input', 'output'] as const) {
    const schema = options[side]
    if (!isStandardSchema(schema) && !isMessageSchema(schema))
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `${kind}() ${side} must be a Standard Schema (zod, valibot, arktype, …) or a protobuf message type`,
      )
  }
  if (options.codec !== undefined) checkCodec(options.codec)
  return Object.freeze({ ...options, kind })
}

/** A request-response method: one input, one output. */
export function unary<I extends Schema, O extends Schema>(
  options: MethodOptions<I, O>,
): Method<'unary', I, O> {
  return method('unary', options)
}

/** A server-stream method: one input, any number of outputs. */
export function serverStream<I extends Schema, O extends Schema>(
  options: MethodOptions<I, O>,
): Method<'server-stream', I, O> {
  return method('server-stream', options)
}

/** A bidirectional session: inputs from the client, outputs from the server, in any order. */
export function session<I extends Schema, O extends Schema>(
  options: MethodOptions<I, O>,
): Method<'session', I, O> {
  return method('session', options)
}

const NAME = /^[A-Za-z0-9_.-]+$/

/**
 * A contract: its methods are served at `/<name>/<method>` (so `/users/get`), plain routes any
 * srpc client, the CLI or another language can call. `codec` (JSON by default) applies to every
 * method that does not name its own.
 */
export function contract<const N extends string, const M extends Methods>(
  name: N,
  methods: M,
  options: { codec?: Codec } = {},
): Contract<N, M> {
  if (typeof name !== 'string' || !NAME.test(name))
    throw new RpcError(Code.INVALID_ARGUMENT, `contract name ${JSON.stringify(name)} must match ${NAME}`)
  if (methods === null || typeof methods !== 'object')
    throw new RpcError(Code.INVALID_ARGUMENT, `contract ${name} needs an object of methods`)
  for (const [key, value] of Object.entries(methods)) {
    if (!NAME.test(key))
      throw new RpcError(Code.INVALID_ARGUMENT, `method name ${JSON.stringify(key)} must match ${NAME}`)
    if (value === null || typeof value !== 'object' || typeof value.kind !== 'string')
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `${name}.${key} must be made with unary(), serverStream() or session()`,
      )
    checkRoute(routeOf(name, key))
  }
  const codec = options.codec ?? json
  checkCodec(codec)
  return Object.freeze({ name, methods: Object.freeze({ ...methods }), codec })
}

/** The route a method is served on: `/<contract>/<method>`. */
export function routeOf(contractName: string, methodName: string): string {
  return `/${contractName}/${methodName}`
}

/** The codec a method uses: its own, or its contract's. */
export function codecOf(c: Contract, m: Method): Codec {
  return m.codec ?? c.codec
}

function checkCodec(codec: Codec): void {
  if (
    codec === null ||
    typeof codec !== 'object' ||
    typeof codec.name !== 'string' ||
    typeof codec.encode !== 'function' ||
    typeof codec.decode !== 'function'
  )
    throw new RpcError(Code.INVALID_ARGUMENT, 'a codec needs a name, encode() and decode()')
}
