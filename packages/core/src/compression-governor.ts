import { performance } from 'node:perf_hooks'

/**
 * What the governor reads from its surroundings: injected, so tests can feed it a clock and a load.
 * `now()` in ms; `busy()` the event loop's utilisation (0–1) since the previous call.
 */
export interface GovernorProbe {
  now(): number
  busy(): number
}

/** The real probe: performance.now() and the event-loop utilisation of this thread. */
export function eventLoopProbe(): GovernorProbe {
  let last = performance.eventLoopUtilization()
  return {
    now: () => performance.now(),
    busy: () => {
      const current = performance.eventLoopUtilization()
      const delta = performance.eventLoopUtilization(current, last)
      last = current
      return delta.utilization
    },
  }
}

/** Length of one observation window, ms. */
export const GOVERNOR_WINDOW_MS = 200
/** Least traffic in a window worth compressing, bytes (160 KB/s at 200 ms windows). */
export const GOVERNOR_MIN_WINDOW_BYTES = 32 * 1024
/** Above this event-loop utilisation the CPU, not the link, is what limits us: compression stays off. */
export const GOVERNOR_MAX_BUSY = 0.5
/**
 * Deflate cost assumed before one was measured, ns per input byte: level 1 runs 3–10 on large
 * JSON, but each call also sets up a zlib stream (tens of µs): 40–90 ns/byte at 4 KiB, measured on
 * the bench machine. On the safe side, so a busy LAN connection is not tried on a guess.
 */
const DEFAULT_DEFLATE_NS_PER_BYTE = 50
/** Compressed windows must carry at least this much more than a plain one to stay on (noise margin). */
const MIN_GAIN = 1.05
/** Windows compressed before the first look at what sending plainly would do; doubles up to the max. */
const RECHECK_FIRST = 4
const RECHECK_MAX = 300
/** After compression did not pay, how long it stays off before it may be tried again, ms (doubles). */
const HOLD_FIRST_MS = 5000
const HOLD_MAX_MS = 60_000
/** Windows in a row that must look link-bound before compression is switched on (start-up and JIT look idle too). */
const WINDOWS_TO_SWITCH_ON = 2
/** Messages between looks at the clock: keeps the cost per message at a counter increment. */
const CHECK_EVERY = 16

export type GovernorState = 'off' | 'on' | 'recheck'

/**
 * Adaptive compression (the default): decides, per connection, whether compressing what we send
 * pays. Deflate costs CPU on both ends; it pays only when the link, not the CPU, is what limits
 * the connection. "Writes back up" cannot tell: socket buffers (MBs on loopback) absorb a
 * connection's whole flow-control window, so a slow link never makes `write()` return false.
 * What can tell, cheaply:
 *
 * - Off → on, by model: in two windows in a row of traffic (≥ GOVERNOR_MIN_WINDOW_BYTES), the event loop was
 *   mostly idle (≤ GOVERNOR_MAX_BUSY busy) and deflating everything sent would fit in that idle
 *   time (bytes/s × measured deflate ns/byte). A busy loop means the CPU is the bottleneck (a
 *   LAN, loopback), where compressing only adds cost; an idle loop with calls still flowing
 *   means the time goes elsewhere: the link, or the peer. (A measured A/B cannot decide this
 *   step: in an echo both directions are saturated, and compressing one alone gains nothing.)
 * - On → off, by measurement: after 4 compressed windows, then 8, 16 … 300 (0.8 s doubling to
 *   60 s), one window is sent plainly ('recheck'); unless compressed windows carried at least
 *   1.05× the raw bytes per second that plain did, compression did not pay (the link kept up, the
 *   peer or our CPU is the limit, the app is just quiet, or the data does not shrink): off, and
 *   held off 5 s, doubling to 60 s. The ELU test alone misfires on a CPU-starved host (the loop
 *   waits for a peer that waits for a core); this measured step takes it back within a second.
 *
 * Cost while off: a counter per message and a clock read every CHECK_EVERY messages. The
 * Compressor's own sniff and backoff still keep incompressible data from being tried.
 */
export class CompressionGovernor {
  #probe: GovernorProbe
  #state: GovernorState = 'off'
  #windowStart: number
  /** Bytes handed over this window: as they were (raw), and as they went (wire). */
  #raw = 0
  #count = 0
  #deflateNsPerByte = DEFAULT_DEFLATE_NS_PER_BYTE
  /** Raw bytes and ms sent compressed since the last switch or recheck: what a recheck is held to. */
  #onBytes = 0
  #onMs = 0
  #windowsOn = 0
  /** Windows in a row that looked link-bound while off. */
  #linkBound = 0
  #recheckAfter = RECHECK_FIRST
  #holdUntil = 0
  #holdMs = HOLD_FIRST_MS
  /** Times compression was switched on (an observable for tests and diagnostics). */
  switchedOn = 0

  constructor(probe: GovernorProbe = eventLoopProbe()) {
    this.#probe = probe
    this.#windowStart = probe.now()
    probe.busy()
  }

  get state(): GovernorState {
    return this.#state
  }

  /** Whether to try compressing the next payload. */
  get compressing(): boolean {
    return this.#state === 'on'
  }

  /** A deflate of `bytes` took `ms`: keeps the cost estimate current. */
  deflated(bytes: number, ms: number): void {
    if (bytes < 1024) return
    const nsPerByte = (ms * 1e6) / bytes
    this.#deflateNsPerByte = this.#deflateNsPerByte * 0.75 + nsPerByte * 0.25
  }

  /** A payload of `raw` bytes was sent (compressed or not). */
  sent(raw: number): void {
    this.#raw += raw
    if (++this.#count < CHECK_EVERY) return
    this.#count = 0
    const now = this.#probe.now()
    if (now - this.#windowStart >= GOVERNOR_WINDOW_MS) this.#evaluate(now)
  }

  #evaluate(now: number): void {
    const seconds = (now - this.#windowStart) / 1000
    const rate = this.#raw / seconds
    const bytes = this.#raw
    const busy = this.#probe.busy()
    this.#windowStart = now
    this.#raw = 0
    switch (this.#state) {
      case 'off': {
        const cpuToDeflate = rate * this.#deflateNsPerByte * 1e-9
        const linkBound =
          now >= this.#holdUntil &&
          bytes >= GOVERNOR_MIN_WINDOW_BYTES &&
          busy <= GOVERNOR_MAX_BUSY &&
          cpuToDeflate <= 1 - busy
        this.#linkBound = linkBound ? this.#linkBound + 1 : 0
        if (this.#linkBound < WINDOWS_TO_SWITCH_ON) return
        this.#linkBound = 0
        this.#state = 'on'
        this.#windowsOn = 0
        this.#onBytes = 0
        this.#onMs = 0
        this.#recheckAfter = RECHECK_FIRST
        this.switchedOn++
        return
      }
      case 'on':
        // The first window after a switch is left out: it still carries plain messages' answers.
        if (this.#windowsOn++ > 0) {
          this.#onBytes += bytes
          this.#onMs += seconds * 1000
        }
        if (this.#windowsOn > this.#recheckAfter) this.#state = 'recheck'
        return
      case 'recheck': {
        const onRate = this.#onMs > 0 ? (this.#onBytes / this.#onMs) * 1000 : 0
        if (onRate < rate * MIN_GAIN) {
          this.#state = 'off'
          this.#holdUntil = now + this.#holdMs
          this.#holdMs = Math.min(this.#holdMs * 2, HOLD_MAX_MS)
        } else {
          this.#state = 'on'
          this.#windowsOn = 0
          this.#onBytes = 0
          this.#onMs = 0
          this.#recheckAfter = Math.min(this.#recheckAfter * 2, RECHECK_MAX)
          this.#holdMs = HOLD_FIRST_MS
        }
        return
      }
    }
  }
}
