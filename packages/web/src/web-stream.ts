import { CallStream } from '@srpc/core/portable'
import type { ReceivingCall } from './calls'

/** Makes a WebStream (its constructor is private: users get one from `callStream`). */
export let streamOf!: (open: () => Promise<ReceivingCall>) => WebStream

/**
 * A server stream as the page reads it: `for await (const chunk of stream)`. The call opens at
 * the first `next()`, where its errors surface too; `break` (or `return()`) cancels it on the
 * server, whose handler sees `ctx.signal` abort. `responseMetadata` holds what the server set in
 * `ctx.responseMetadata`, once the stream ended. The same iterator as the Node pool's
 * ClientStream (core's CallStream), over Uint8Array chunks.
 */
export class WebStream extends CallStream<Uint8Array> {
  static {
    streamOf = (open) => new WebStream(open)
  }

  private constructor(open: () => Promise<ReceivingCall>) {
    super(open)
  }
}
