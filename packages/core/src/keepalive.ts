import { randomBytes } from 'node:crypto'
import { Code, ControlKind, encodeControl, formatMs, RpcError } from '@srpc/protocol'

export interface KeepaliveHooks {
  /** Sends an encoded frame (a PING) to the peer. */
  send(frame: Uint8Array): void
  /** The peer did not answer in time: fail the connection with `error` (UNAVAILABLE). */
  fail(error: RpcError): void
}

/**
 * Keepalive as a sender and a watchdog: PINGs the peer after `interval` ms in which nothing
 * arrived, and fails the connection when nothing (the PONG or any other data) arrives within
 * `timeout` ms after that. The owner calls `heard()` for every chunk it receives; one timer at a
 * time, unref'd, so an idle process can still exit.
 */
export class Keepalive {
  #hooks: KeepaliveHooks
  #interval = 0
  #timeout = 0
  #timer: NodeJS.Timeout | undefined
  /** Set by every chunk received; each check reads and clears it. */
  #heard = true
  #idleCheck = () => this.#onIdle()
  #answerCheck = () => this.#onAnswerDue()

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
    this.#arm(interval, this.#idleCheck)
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

  #arm(delay: number, check: () => void): void {
    const timer = setTimeout(check, delay)
    timer.unref()
    this.#timer = timer
  }

  #onIdle(): void {
    if (this.#heard) {
      this.#heard = false
      this.#arm(this.#interval, this.#idleCheck)
      return
    }
    // The watchdog is armed before the ping goes out: a send that closes the connection (and so
    // stops the keepalive) leaves no timer behind.
    this.#arm(this.#timeout, this.#answerCheck)
    this.#hooks.send(encodeControl(0, { kind: ControlKind.PING, payload: randomBytes(8) }))
  }

  #onAnswerDue(): void {
    if (this.#heard) {
      this.#heard = false
      this.#arm(this.#interval, this.#idleCheck)
      return
    }
    this.#timer = undefined
    this.#hooks.fail(
      new RpcError(Code.UNAVAILABLE, `no answer to a keepalive ping within ${formatMs(this.#timeout)}`),
    )
  }
}
