import { CallStream } from '@srpc/core'
import type { StreamingCall } from './streaming-call'

/** A stream that opens its call with `open` on the first `next()` (the constructor is private: users never make one). */
export let streamOf!: (open: () => Promise<StreamingCall>) => ClientStream

/**
 * What `pool.callStream()` returns: an async iterator over the server's chunks. The request is
 * sent on the first `next()` (as with an async generator); leaving a `for await` early
 * (`break`, `return`, an exception) cancels the stream on the server. `responseMetadata` holds
 * what the server sent with its end.
 */
export class ClientStream extends CallStream<Buffer> {
  static {
    streamOf = (open) => new ClientStream(open)
  }

  private constructor(open: () => Promise<StreamingCall>) {
    super(open)
  }
}
