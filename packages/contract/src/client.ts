import type { CallOptions, ClientStream, Pool, SessionOptions } from '@srpc/client'
import type { Metadata, RpcError } from '@srpc/protocol'
import { type Contract, codecOf, type Method, type Methods, routeOf } from './contract'
import type { InputOf, OutputOf } from './schema'
import { TypedClientSession, type Wire } from './typed-session'
import { readOutput, writeInput } from './values'

/**
 * Every typed call waits for the connection's extension negotiation when the connection is new,
 * so that even the first call of a connection gets error details (validation issues) and
 * response metadata; later calls do not wait.
 */
const WAIT_FOR_EXTENSIONS: CallOptions = Object.freeze({ waitForExtensions: true })

function typedOptions<O extends CallOptions>(options: O | undefined): O {
  if (options === undefined) return WAIT_FOR_EXTENSIONS as O
  return options.waitForExtensions === undefined ? { ...options, waitForExtensions: true } : options
}

/** The arguments of a call: the input may be left out when the schema accepts `undefined`. */
type Args<In, Opts> = undefined extends In ? [input?: In, options?: Opts] : [input: In, options?: Opts]

/** A typed server stream: iterate with `for await`; `break` cancels it on the server. */
export interface TypedStream<T> extends AsyncIterableIterator<T> {
  /** What the server set in `ctx.responseMetadata`, once the stream ended. */
  readonly responseMetadata: Metadata | undefined
}

export type ClientMethod<M extends Method> = M['kind'] extends 'unary'
  ? (...args: Args<InputOf<M['input']>, CallOptions>) => Promise<OutputOf<M['output']>>
  : M['kind'] extends 'server-stream'
    ? (...args: Args<InputOf<M['input']>, CallOptions>) => TypedStream<OutputOf<M['output']>>
    : (
        options?: CallOptions & SessionOptions,
      ) => Promise<TypedClientSession<InputOf<M['input']>, OutputOf<M['output']>>>

/** One function per method of the contract, each typed by its method. */
export type Client<C extends Contract> = {
  readonly [K in keyof C['methods']]: ClientMethod<C['methods'][K]>
}

export interface ClientOptions {
  /**
   * Check every reply, chunk and server message against the output schema (default false: the
   * server already checked it before sending). A value that fails is INTERNAL with the issues in
   * `err.details.issues`.
   */
  validateOutput?: boolean
}

/**
 * A typed client for `contract` over `pool`: `client.get({ id })` is `pool.call('/users/get', …)`
 * with the input encoded and the reply decoded. Call options (timeout, signal, metadata, retry,
 * onResponseMetadata) pass through to the pool unchanged. Inputs are not validated here (the
 * server does it, and answers INVALID_ARGUMENT with the issues); a value the codec cannot encode
 * fails with INVALID_ARGUMENT before anything is sent.
 */
export function createClient<C extends Contract>(
  pool: Pick<Pool, 'call' | 'callStream' | 'createBidirectionalSession'>,
  contract: C,
  options: ClientOptions = {},
): Client<C> {
  const validate = options.validateOutput ?? false
  const client: Record<string, unknown> = {}
  const methods: Methods = contract.methods
  for (const [name, method] of Object.entries(methods)) {
    const wire: Wire = {
      route: routeOf(contract.name, name),
      codec: codecOf(contract, method),
      input: method.input,
      output: method.output,
    }
    client[name] = clientMethod(pool, method, wire, validate)
  }
  return Object.freeze(client) as Client<C>
}

function clientMethod(
  pool: Pick<Pool, 'call' | 'callStream' | 'createBidirectionalSession'>,
  method: Method,
  wire: Wire,
  validate: boolean,
): unknown {
  const { route, codec, input, output } = wire
  switch (method.kind) {
    case 'unary':
      return (value?: unknown, callOptions?: CallOptions) => {
        let payload: Uint8Array
        try {
          payload = writeInput(codec, input, value)
        } catch (err) {
          return Promise.reject(err)
        }
        return pool
          .call(route, payload, typedOptions(callOptions))
          .then((reply) => readOutput(codec, output, reply, validate))
      }
    case 'server-stream':
      return (value?: unknown, callOptions?: CallOptions) =>
        new TypedClientStream(
          () => pool.callStream(route, writeInput(codec, input, value), typedOptions(callOptions)),
          wire,
          validate,
        )
    case 'session':
      return (sessionOptions?: CallOptions & SessionOptions) =>
        pool
          .createBidirectionalSession(route, typedOptions(sessionOptions))
          .then((session) => new TypedClientSession(session, wire, validate))
  }
}

/** A ClientStream whose chunks are decoded; an encoding failure of the input fails the first `next()`. */
class TypedClientStream<T> implements TypedStream<T> {
  #open: () => ClientStream
  #raw: ClientStream | undefined
  #wire: Wire
  #validate: boolean

  constructor(open: () => ClientStream, wire: Wire, validate: boolean) {
    this.#open = open
    this.#wire = wire
    this.#validate = validate
  }

  get responseMetadata(): Metadata | undefined {
    return this.#raw?.responseMetadata
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    this.#raw ??= this.#open()
    const result = await this.#raw.next()
    if (result.done) return result
    try {
      return {
        done: false,
        value: (await readOutput(this.#wire.codec, this.#wire.output, result.value, this.#validate)) as T,
      }
    } catch (err) {
      // The server broke the contract: stop the stream there.
      await this.#raw.return()
      throw err as RpcError
    }
  }

  async return(): Promise<IteratorResult<T, undefined>> {
    if (this.#raw) await this.#raw.return()
    return { done: true, value: undefined }
  }
}
