import type { Metadata, RpcError } from '@srpc/protocol'
import { type Contract, codecOf, type Method, type Methods, routeOf } from './contract'
import type { RpcCallOptions, RpcClientLike, RpcSessionOptions, RpcStream } from './rpc-client'
import type { InputOf, OutputOf } from './schema'
import { TypedClientSession, type Wire } from './typed-session'
import { readOutput, writeInput } from './values'

/**
 * Every typed call waits for the connection's extension negotiation when the connection is new,
 * so that even the first call of a connection gets error details (validation issues) and
 * response metadata; later calls do not wait.
 */
const WAIT_FOR_EXTENSIONS: RpcCallOptions = Object.freeze({ waitForExtensions: true })

function typedOptions<O extends RpcCallOptions>(options: O | undefined): O {
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

/** One method of a typed client; `O` is the call options of the client underneath (a pool's or a WebClient's). */
export type ClientMethod<M extends Method, O = RpcCallOptions> = M['kind'] extends 'unary'
  ? (...args: Args<InputOf<M['input']>, O>) => Promise<OutputOf<M['output']>>
  : M['kind'] extends 'server-stream'
    ? (...args: Args<InputOf<M['input']>, O>) => TypedStream<OutputOf<M['output']>>
    : (
        options?: O & RpcSessionOptions,
      ) => Promise<TypedClientSession<InputOf<M['input']>, OutputOf<M['output']>>>

/** One function per method of the contract, each typed by its method. */
export type Client<C extends Contract, O = RpcCallOptions> = {
  readonly [K in keyof C['methods']]: ClientMethod<C['methods'][K], O>
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
 * A typed client for `contract` over `rpc`, a Node `Pool` or a browser `WebClient`:
 * `client.get({ id })` is `rpc.call('/users/get', …)` with the input encoded and the reply
 * decoded. Call options (timeout, signal, metadata, onResponseMetadata, and whatever else the
 * client underneath accepts, such as a pool's retry) pass through unchanged. Inputs are not
 * validated here (the server does it, and answers INVALID_ARGUMENT with the issues); a value the
 * codec cannot encode fails with INVALID_ARGUMENT before anything is sent.
 */
export function createClient<C extends Contract, O extends RpcCallOptions = RpcCallOptions>(
  rpc: RpcClientLike<O>,
  contract: C,
  options: ClientOptions = {},
): Client<C, O> {
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
    client[name] = clientMethod(rpc, method, wire, validate)
  }
  return Object.freeze(client) as Client<C, O>
}

function clientMethod(
  rpc: RpcClientLike<RpcCallOptions>,
  method: Method,
  wire: Wire,
  validate: boolean,
): unknown {
  const { route, codec, input, output } = wire
  switch (method.kind) {
    case 'unary': {
      // Made once per method, not per call.
      const read = (reply: Uint8Array) => readOutput(codec, output, reply, validate)
      return (value?: unknown, callOptions?: RpcCallOptions) => {
        let payload: Uint8Array
        try {
          payload = writeInput(codec, input, value)
        } catch (err) {
          return Promise.reject(err)
        }
        return rpc.call(route, payload, typedOptions(callOptions)).then(read)
      }
    }
    case 'server-stream':
      return (value?: unknown, callOptions?: RpcCallOptions) =>
        new TypedClientStream(
          () => rpc.callStream(route, writeInput(codec, input, value), typedOptions(callOptions)),
          wire,
          validate,
        )
    case 'session':
      return (sessionOptions?: RpcSessionOptions) =>
        rpc
          .createBidirectionalSession(route, typedOptions(sessionOptions))
          .then((session) => new TypedClientSession(session, wire, validate))
  }
}

/** A raw stream whose chunks are decoded; an encoding failure of the input fails the first `next()`. */
class TypedClientStream<T> implements TypedStream<T> {
  #open: () => RpcStream
  #raw: RpcStream | undefined
  #wire: Wire
  #validate: boolean

  constructor(open: () => RpcStream, wire: Wire, validate: boolean) {
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
    if (result.done) return { done: true, value: undefined }
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
