import { randomBytes } from 'node:crypto'
import { Code, ControlKind, encodeControl, formatMs, RpcError } from '@srpc/protocol'

/** What a Keepalive needs of its connection (FrameConnection passes itself: no closures per connection). */
export interface KeepaliveHooks {
  /** Sends an encoded frame (a PING) to the peer. */
  sendEncoded(frame: Uint8Array): void
  /** The peer did not answer in time: the connection ends with `error` (UNAVAILABLE). */
  destroy(error: RpcError): void
}

/**
 * Keepalive as a sender and a watchdog: PINGs the peer after `interval` ms in which nothing
 * arrived, and fails the connection when nothing (the PONG or any other data) arrives within
 * `timeout` ms after that. The owner calls `heard()` for every chunk it receives; one timer at a
 * time, unref'd, so an idle process can still exit. The timer calls one static function with the
 * keepalive as its argument, so a connection's keepalive holds no closure of its own (measured at
 * 112 bytes per connection end with two bound checks).
 */
export class Keepalive {
  #hooks: KeepaliveHooks
  #interval = 0
  #timeout = 0
  #timer: NodeJS.Timeout | undefined
  /** Set by every chunk received; each check reads and clears it. */
  #heard = true
  /** What the pending timer checks: that something arrived in the interval, or the answer to a PING. */
  #awaitingAnswer = false

  static #check(keepalive: Keepalive): void {
    if (keepalive.#awaitingAnswer) keepalive.#onAnswerDue()
    else keepalive.#onIdle()
  }

  constructor(hooks: KeepaliveHooks) {
    this.#hooks = hooks
  }

  /** A timer is pending: the keepalive was started and neither stopped nor fired its failure. */
  get running(): boolean {
    return this.#timer !== undefined
  }

  /** Starts, or restarts with new values: any earlier timer is cleared first, so none leaks. */
  start(interval: number, timeout: number): void {
    this.stop()
    this.#interval = interval
    this.#timeout = timeout
    this.#heard = false
    this.#arm(interval, false)
  }

  stop(): void {
    if (this.#timer === undefined) return
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Data arrived from the peer. Called per chunk, so it only sets a flag. */
  heard(): void {
    this.#heard = true
  }

  #arm(delay: number, awaitingAnswer: boolean): void {
    this.#awaitingAnswer = awaitingAnswer
    const timer = setTimeout(Keepalive.#check, delay, this)
    timer.unref()
    this.#timer = timer
  }

  #onIdle(): void {
    if (this.#heard) {
      this.#heard = false
      this.#arm(this.#interval, false)
      return
    }
    // The watchdog is armed before the ping goes out: a send that closes the connection (and so
    // stops the keepalive) leaves no timer behind.
    this.#arm(this.#timeout, true)
    this.#hooks.sendEncoded(encodeControl(0, { kind: ControlKind.PING, payload: randomBytes(8) }))
  }

  #onAnswerDue(): void {
    if (this.#heard) {
      this.#heard = false
      this.#arm(this.#interval, false)
      return
    }
    this.#timer = undefined
    this.#hooks.destroy(
      new RpcError(Code.UNAVAILABLE, `no answer to a keepalive ping within ${formatMs(this.#timeout)}`),
    )
  }
}
