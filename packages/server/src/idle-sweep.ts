/** What the sweep asks of each connection. */
export interface IdleSweepable {
  /** Drains the connection if it carried no call since `now - idleTimeout` (performance.now() ms). */
  closeIfIdle(now: number, idleTimeout: number): void
}

/**
 * How often, per idle timeout, the sweep looks: a connection is closed between `idleTimeout` and
 * `idleTimeout × (1 + 1/SWEEPS_PER_TIMEOUT)` after its last call.
 */
export const SWEEPS_PER_TIMEOUT = 8

/**
 * Closes the server's connections that carried no call for `idleTimeout` ms, from one timer for
 * all of them (unref'd, armed only while there are connections). A Timeout per connection, with
 * its callback, cost about 250 bytes of heap for each one (4 MiB for 16,384 connections); a sweep
 * costs one comparison per connection every `idleTimeout / SWEEPS_PER_TIMEOUT` ms.
 */
export class IdleSweep {
  readonly idleTimeout: number
  #connections: ReadonlySet<IdleSweepable>
  #timer: NodeJS.Timeout | undefined

  constructor(idleTimeout: number, connections: ReadonlySet<IdleSweepable>) {
    this.idleTimeout = idleTimeout
    this.#connections = connections
  }

  /** A connection was added: start sweeping if nothing is. */
  connectionAdded(): void {
    if (this.#timer === undefined && this.idleTimeout > 0) this.#arm()
  }

  #arm(): void {
    this.#timer = setTimeout(IdleSweep.#sweep, Math.max(1, this.idleTimeout / SWEEPS_PER_TIMEOUT), this)
    this.#timer.unref()
  }

  static #sweep(sweep: IdleSweep): void {
    sweep.#timer = undefined
    if (sweep.#connections.size === 0) return
    const now = performance.now()
    // A drain may close (and so delete) a connection during the loop: Set iteration allows that.
    for (const connection of sweep.#connections) connection.closeIfIdle(now, sweep.idleTimeout)
    if (sweep.#connections.size > 0) sweep.#arm()
  }
}
