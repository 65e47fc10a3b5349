import type { Metadata, RpcError } from '@srpc/protocol'
import type { Codec } from './codec'
import type { RpcSession } from './rpc-client'
import type { RpcServerSession } from './rpc-server'
import type { Schema } from './schema'
import { readInput, readOutput, writeInput } from './values'

/** The server's side of a typed session: the client's messages as `In`, ours as `Out`. */
export interface ServerSession<In, Out> {
  /** The next client message, validated; `undefined` once the client closed its half. Rejects INVALID_ARGUMENT for a bad one. */
  receive(): Promise<In | undefined>
  /** The client's messages, validated, until it closes its half. */
  messages(): AsyncIterable<In>
  /** Sends one message; a value the output schema refuses is a handler bug (the session fails INTERNAL). */
  send(message: Out): Promise<void>
  /** Ends our half now (the handler may still read). */
  close(): Promise<void>
  readonly bufferedAmount: number
  readonly signal: AbortSignal
}

/** What a method's values go through: its codec, its two schemas. */
export interface Wire {
  readonly route: string
  readonly codec: Codec
  readonly input: Schema
  readonly output: Schema
}

export class TypedServerSession<In, Out> implements ServerSession<In, Out> {
  #raw: RpcServerSession
  #wire: Wire
  #encode: (value: unknown) => Uint8Array | Promise<Uint8Array>

  /** `encode` validates (unless the server turned that off) and encodes one outgoing message. */
  constructor(
    raw: RpcServerSession,
    wire: Wire,
    encode: (value: unknown) => Uint8Array | Promise<Uint8Array>,
  ) {
    this.#raw = raw
    this.#wire = wire
    this.#encode = encode
  }

  async receive(): Promise<In | undefined> {
    const message = await this.#raw.receive()
    if (message === undefined) return undefined
    return (await readInput(this.#wire.codec, this.#wire.input, message)) as In
  }

  async *messages(): AsyncIterable<In> {
    const { codec, input } = this.#wire
    for await (const message of this.#raw.messages()) yield (await readInput(codec, input, message)) as In
  }

  async send(message: Out): Promise<void> {
    return this.#raw.send(await this.#encode(message))
  }

  close(): Promise<void> {
    return this.#raw.close()
  }

  get bufferedAmount(): number {
    return this.#raw.bufferedAmount
  }

  get signal(): AbortSignal {
    return this.#raw.signal
  }
}

/**
 * The client's side of a typed session: ours as `In`, the server's messages as `Out` (checked
 * against the output schema when the client was made with `validateOutput`).
 */
export class TypedClientSession<In, Out> implements AsyncIterable<Out> {
  #raw: RpcSession
  #wire: Wire
  #validate: boolean

  constructor(raw: RpcSession, wire: Wire, validate: boolean) {
    this.#raw = raw
    this.#wire = wire
    this.#validate = validate
  }

  /** Sends one message; rejects INVALID_ARGUMENT, sending nothing, for a value the codec cannot encode. */
  send(message: In): Promise<void> {
    let bytes: Uint8Array
    try {
      bytes = writeInput(this.#wire.codec, this.#wire.input, message)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#raw.send(bytes)
  }

  /** The next server message, or `undefined` once the server ended its half. */
  async receive(): Promise<Out | undefined> {
    const message = await this.#raw.receive()
    if (message === undefined) return undefined
    return this.#read(message)
  }

  async *messages(): AsyncIterable<Out> {
    for await (const message of this.#raw.messages()) yield await this.#read(message)
  }

  [Symbol.asyncIterator](): AsyncIterator<Out> {
    return this.messages()[Symbol.asyncIterator]()
  }

  /** Ends our half and waits (bounded) for the server to end its half. */
  close(): Promise<void> {
    return this.#raw.close()
  }

  /** Ends the session now. */
  cancel(error: RpcError): void {
    this.#raw.cancel(error)
  }

  get route(): string {
    return this.#raw.route
  }

  get bufferedAmount(): number {
    return this.#raw.bufferedAmount
  }

  get signal(): AbortSignal {
    return this.#raw.signal
  }

  get error(): RpcError | undefined {
    return this.#raw.error
  }

  get ended(): boolean {
    return this.#raw.ended
  }

  /** What the server set in `ctx.responseMetadata`, once its half ended. */
  get responseMetadata(): Metadata | undefined {
    return this.#raw.responseMetadata
  }

  async #read(message: Uint8Array): Promise<Out> {
    try {
      return (await readOutput(this.#wire.codec, this.#wire.output, message, this.#validate)) as Out
    } catch (err) {
      // The server broke the contract: the session cannot go on meaningfully.
      this.#raw.cancel(err as RpcError)
      throw err
    }
  }
}
