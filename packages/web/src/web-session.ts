import { CallSession } from '@srpc/core/portable'
import type { SessionCall } from './calls'

/** Makes a WebSession (its constructor is private: users get one from `createBidirectionalSession`). */
export let sessionOf!: (call: SessionCall) => WebSession

/**
 * A bidirectional session: messages both ways on one id, in order, until both halves end. The
 * Node client's ClientSession is the same class (core's CallSession) over its own call: `send`,
 * `receive`, `messages()`, `close`, `cancel`, `bufferedAmount`, `signal`, `responseMetadata`, so
 * code and typed contracts move between the two. `close()` waits up to the `closeTimeout` option
 * for the server to end its half, then cancels.
 */
export class WebSession extends CallSession<Uint8Array> {
  static {
    sessionOf = (call) => new WebSession(call)
  }

  private constructor(call: SessionCall) {
    super(call)
  }
}
