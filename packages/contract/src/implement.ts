import { Code, RpcError } from '@srpc/protocol'
import { type Contract, codecOf, type Method, type Methods, routeOf } from './contract'
import type { HandlerContext, RpcServerLike, ServingContext } from './rpc-server'
import { type InputOf, jsonSchemaOf, type OutputOf } from './schema'
import { type ServerSession, TypedServerSession, type Wire } from './typed-session'
import { readInput, settle, writeOutput } from './values'

type Awaitable<T> = T | PromiseLike<T>

/** A unary method's handler: the validated input in, the output (or a promise of it) out; throw RpcError to fail. */
export type UnaryHandler<M extends Method, Ctx = HandlerContext> = (
  input: OutputOf<M['input']>,
  ctx: Ctx,
) => Awaitable<InputOf<M['output']>>

/** A server-stream method's handler: an async generator (or any iterable) of outputs. */
export type ServerStreamHandler<M extends Method, Ctx = HandlerContext> = (
  input: OutputOf<M['input']>,
  ctx: Ctx,
) => AsyncIterable<InputOf<M['output']>> | Iterable<InputOf<M['output']>>

/** A session method's handler: reads and writes the typed session until it returns. */
export type SessionHandler<M extends Method, Ctx = HandlerContext> = (
  session: ServerSession<OutputOf<M['input']>, InputOf<M['output']>>,
  ctx: Ctx,
) => Awaitable<void>

/** The handler of method `M`; `Ctx` is the server's context type (`Context` of `@srpc/server`). */
export type HandlerFor<M extends Method, Ctx = HandlerContext> = M['kind'] extends 'unary'
  ? UnaryHandler<M, Ctx>
  : M['kind'] extends 'server-stream'
    ? ServerStreamHandler<M, Ctx>
    : SessionHandler<M, Ctx>

/** One handler per method of the contract, each typed by its method. */
export type Implementation<C extends Contract, Ctx = HandlerContext> = {
  [K in keyof C['methods']]: HandlerFor<C['methods'][K], Ctx>
}

export interface ImplementOptions {
  /**
   * Check every output against its schema before it is sent (default true): a handler that
   * returns something else fails the call with INTERNAL and the server emits `error`, instead of
   * the client getting a value its types lie about.
   */
  validateOutput?: boolean
}

/**
 * Serves every method of `contract` on `server`, at `/<contract>/<method>`, registered with its
 * kind, codec and JSON Schemas (for reflection; calls of the wrong kind fail FAILED_PRECONDITION).
 * Inputs are decoded and validated before the handler runs: a bad one is INVALID_ARGUMENT with
 * the issues in `err.details.issues`.
 */
export function implement<C extends Contract, Ctx>(
  server: RpcServerLike<Ctx>,
  contract: C,
  handlers: Implementation<C, Ctx>,
  options: ImplementOptions = {},
): void {
  if (handlers === null || typeof handlers !== 'object')
    throw new RpcError(Code.INVALID_ARGUMENT, `implement(${contract.name}) needs an object of handlers`)
  const methods: Methods = contract.methods
  for (const key of Object.keys(handlers)) {
    if (!Object.hasOwn(methods, key))
      throw new RpcError(Code.INVALID_ARGUMENT, `${contract.name} has no method ${key}`)
  }
  const validateOutput = options.validateOutput ?? true
  // Check all first, then register: a mistake registers nothing.
  const routes = Object.entries(methods).map(([name, method]) => {
    const handler = (handlers as Record<string, unknown>)[name]
    if (typeof handler !== 'function')
      throw new RpcError(
        Code.INVALID_ARGUMENT,
        `implement(${contract.name}) is missing a handler for ${name}`,
      )
    const wire: Wire = {
      route: routeOf(contract.name, name),
      codec: codecOf(contract, method),
      input: method.input,
      output: method.output,
    }
    return { method, wire, handler: serve(method, wire, handler as AnyHandler, validateOutput) }
  })
  for (const { method, wire, handler } of routes) {
    // The server's context is a ServingContext too (it has payload, stream() and session()).
    ;(server as RpcServerLike<ServingContext>).handle(wire.route, handler, {
      kind: method.kind,
      codec: wire.codec.name,
      input: jsonSchemaOf(method.input, 'input'),
      output: jsonSchemaOf(method.output, 'output'),
      description: method.description,
    })
  }
}

type AnyHandler = (first: unknown, ctx: ServingContext) => unknown
type RawHandler = (ctx: ServingContext) => unknown

function serve(method: Method, wire: Wire, handler: AnyHandler, validateOutput: boolean): RawHandler {
  const { codec, input, output, route } = wire
  const encode = validateOutput
    ? (value: unknown) => writeOutput(codec, output, value, route)
    : (value: unknown) => encodeOnly(wire, value)
  switch (method.kind) {
    case 'unary':
      return (ctx) =>
        settle(readInput(codec, input, ctx.payload), (value) => settle(handler(value, ctx), encode)) as
          | Uint8Array
          | Promise<Uint8Array>
    case 'server-stream':
      return async (ctx) => {
        const value = await readInput(codec, input, ctx.payload)
        const iterable = handler(value, ctx) as AsyncIterable<unknown> | Iterable<unknown>
        if (
          iterable === null ||
          typeof iterable !== 'object' ||
          !(Symbol.asyncIterator in iterable || Symbol.iterator in iterable)
        )
          throw new Error(
            `${route} handler must return an async iterable (an async generator) or an iterable`,
          )
        const stream = ctx.stream()
        // Leaving the loop (the client cancelled: writeChunk rejects) calls the generator's return().
        for await (const item of iterable) await stream.writeChunk(await encode(item))
      }
    case 'session':
      return async (ctx) => {
        await handler(new TypedServerSession(ctx.session(), wire, encode), ctx)
      }
  }
}

function encodeOnly(wire: Wire, value: unknown): Uint8Array {
  try {
    return wire.codec.encode(value, wire.output)
  } catch (err) {
    throw new Error(`${wire.route} returned an output ${wire.codec.name} cannot encode: ${String(err)}`, {
      cause: err,
    })
  }
}
