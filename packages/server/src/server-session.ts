import type { Session } from '@srpc/core'
import type { ServerCall } from './server-call'

/** `ctx.session()`: the server's half of a session behind the Session interface the client's ClientSession shares. */
export class ServerSession implements Session {
  #call: ServerCall

  constructor(call: ServerCall) {
    this.#call = call
  }

  send(data: Uint8Array | string): Promise<void> {
    return this.#call.sendMessage(data)
  }

  receive(): Promise<Buffer | undefined> {
    return this.#call.receiveMessage()
  }

  messages(): AsyncIterable<Buffer> {
    return this.#call.messages()
  }

  /** Ends our half now (the client's receive() gets `undefined`); the handler may still read. */
  close(): Promise<void> {
    return this.#call.closeOutput()
  }

  get bufferedAmount(): number {
    return this.#call.bufferedAmount
  }

  get signal(): AbortSignal {
    return this.#call.signal
  }
}
