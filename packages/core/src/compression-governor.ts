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
 * Deflate cost per message assumed before one was measured, ms. Up to tens of KiB the cost is
 * mostly setting up a zlib stream per call, not the bytes: level 1 took 0.15–0.2 ms for 4, 16
 * and 64 KiB of JSON alike on the bench machine. On the safe side, so a busy LAN connection is
 * not tried on a guess.
 */
const DEFAULT_DEFLATE_MS_PER_MESSAGE = 0.15
/** Deflating a window's messages may take at most this share of the loop's idle time. */
const IDLE_SHARE = 0.5
/** Compressed windows must carry at least this much more than a plain one to stay on (noise margin). */
const MIN_GAIN = 1.05
/**
 * Windows compressed before the first look: against the plain windows that switched it on, so no
 * window is sent plainly for it. Later looks send one window plainly; their interval doubles up to
 * the max, and is at least what keeps those plain windows under RECHECK_COST of what compression gains.
 */
const RECHECK_FIRST = 4
const RECHECK_MAX = 300
/** Share of throughput the plain recheck windows may cost while compression pays. */
const RECHECK_COST = 0.05
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
 *   mostly idle (≤ GOVERNOR_MAX_BUSY busy) and deflating every message sent would fit in half that
 *   idle time (messages/s × the measured deflate time per message; 0.15 ms before the first). A busy loop means the CPU is the bottleneck (a
 *   LAN, loopback), where compressing only adds cost; an idle loop with calls still flowing
 *   means the time goes elsewhere: the link, or the peer. (A measured A/B cannot decide this
 *   step: in an echo both directions are saturated, and compressing one alone gains nothing.)
 * - On → off, by measurement: compressed windows are held to plain ones. Unless they carried at
 *   least 1.05× the raw bytes per second that plain did, compression did not pay (the link kept
 *   up, the peer or our CPU is the limit, the app is just quiet, or the data does not shrink):
 *   off, and held off 5 s, doubling to 60 s. The first look, after 4 compressed windows (0.8 s),
 *   compares them with the plain windows that switched compression on, so it costs no plain
 *   window. Later looks send one window plainly ('recheck') to see whether the link got faster:
 *   after 8, 16 … 300 windows (doubling to 60 s), and never so often that those plain windows cost
 *   more than 5 % of what compression gains (at a 5× gain, one in 16 windows or fewer). The ELU
 *   test alone misfires on a CPU-starved host (the loop waits for a peer that waits for a core);
 *   this measured step takes it back within a second.
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
  /** Messages of the window big enough to be compressed. */
  #eligible = 0
  #deflateMsPerMessage = DEFAULT_DEFLATE_MS_PER_MESSAGE
  /** Raw bytes and ms sent compressed since the last switch or recheck: what a recheck is held to. */
  #onBytes = 0
  #onMs = 0
  #windowsOn = 0
  /** Windows in a row that looked link-bound while off, and the best raw rate among them (bytes/s). */
  #linkBound = 0
  #linkBoundRate = 0
  /** The plain rate the first look holds compressed windows to; 0 once that look is done. */
  #plainBefore = 0
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

  /** A deflate took `ms`: keeps the cost estimate current. */
  deflated(ms: number): void {
    this.#deflateMsPerMessage = this.#deflateMsPerMessage * 0.75 + ms * 0.25
  }

  /** A payload of `raw` bytes was sent (compressed or not); `eligible`: big enough to be compressed. */
  sent(raw: number, eligible = true): void {
    this.#raw += raw
    if (eligible) this.#eligible++
    if (++this.#count < CHECK_EVERY) return
    this.#count = 0
    const now = this.#probe.now()
    if (now - this.#windowStart >= GOVERNOR_WINDOW_MS) this.#evaluate(now)
  }

  #evaluate(now: number): void {
    const seconds = (now - this.#windowStart) / 1000
    const rate = this.#raw / seconds
    const bytes = this.#raw
    const eligible = this.#eligible
    this.#eligible = 0
    const busy = this.#probe.busy()
    this.#windowStart = now
    this.#raw = 0
    switch (this.#state) {
      case 'off': {
        // The share of a core that deflating this window's messages would have taken.
        const cpuToDeflate = (eligible * this.#deflateMsPerMessage) / (seconds * 1000)
        const linkBound =
          now >= this.#holdUntil &&
          bytes >= GOVERNOR_MIN_WINDOW_BYTES &&
          busy <= GOVERNOR_MAX_BUSY &&
          cpuToDeflate <= (1 - busy) * IDLE_SHARE
        if (!linkBound) {
          this.#linkBound = 0
          this.#linkBoundRate = 0
          return
        }
        this.#linkBoundRate = Math.max(this.#linkBoundRate, rate)
        if (++this.#linkBound < WINDOWS_TO_SWITCH_ON) return
        this.#plainBefore = this.#linkBoundRate
        this.#linkBound = 0
        this.#linkBoundRate = 0
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
        if (this.#windowsOn <= this.#recheckAfter) return
        if (this.#plainBefore > 0) {
          // The first look needs no plain window: the windows that switched it on were plain.
          const plain = this.#plainBefore
          this.#plainBefore = 0
          this.#judge(plain, now)
        } else {
          this.#state = 'recheck'
        }
        return
      case 'recheck':
        this.#judge(rate, now)
        return
    }
  }

  /** Compressed windows against a plain rate (bytes/s): on again until the next look, or off and held off. */
  #judge(plainRate: number, now: number): void {
    const onRate = this.#onMs > 0 ? (this.#onBytes / this.#onMs) * 1000 : 0
    if (onRate < plainRate * MIN_GAIN) {
      this.#state = 'off'
      this.#plainBefore = 0
      this.#holdUntil = now + this.#holdMs
      this.#holdMs = Math.min(this.#holdMs * 2, HOLD_MAX_MS)
      return
    }
    this.#state = 'on'
    this.#windowsOn = 0
    this.#onBytes = 0
    this.#onMs = 0
    // A plain window costs (1 − plain/on) of a window's throughput: spread it so the looks cost at most RECHECK_COST.
    const affordable = onRate > 0 ? Math.ceil((1 - plainRate / onRate) / RECHECK_COST) : 0
    this.#recheckAfter = Math.min(Math.max(this.#recheckAfter * 2, affordable), RECHECK_MAX)
    this.#holdMs = HOLD_FIRST_MS
  }
}
