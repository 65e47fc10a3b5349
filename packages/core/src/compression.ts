import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import { deflateRaw, deflateRawSync, inflateRaw, inflateRawSync } from 'node:zlib'
import { Code, invalidOption, nonNegativeIntOption, RpcError } from '@srpc/protocol'
import type { CompressionGovernor } from './compression-governor'

const deflateRawAsync = promisify(deflateRaw)
const inflateRawAsync = promisify(inflateRaw)

/** Codecs this build speaks, in order of preference. */
export const SUPPORTED_CODECS = ['deflate'] as const
/** Values smaller than this are sent as they are: compressing them costs more than it saves. */
export const DEFAULT_COMPRESSION_THRESHOLD = 1024
/** zlib level 1: most of the size win at a fraction of the CPU of the default level 6. */
export const DEFAULT_COMPRESSION_LEVEL = 1
/**
 * Payloads at least this large are deflated on zlib's thread pool, not the event loop: level 1
 * takes about 0.2 ms for 64 KiB of JSON and 150 ms for 16 MiB, measured on the bench machine.
 */
export const ASYNC_DEFLATE_MIN = 64 * 1024
/**
 * Compressed values at least this large are inflated on zlib's thread pool: 16 KiB of deflate
 * can stand for 1 MiB of patterned data (0.5 ms) or 16 MiB of zeros.
 */
export const ASYNC_INFLATE_MIN = 16 * 1024

/**
 * - `'auto'` (the default): offered, and used for what we send only while it pays (see
 *   CompressionGovernor: while the link, not the CPU, limits the connection);
 * - `true`: every payload above the threshold is tried (sniff and backoff aside);
 * - `false`: neither offered nor accepted.
 * Compressed frames from the peer are always accepted unless this is `false`.
 */
export type CompressionMode = 'auto' | 'always' | 'never'

export interface CompressionOptions {
  /** `'auto'` (default): compress while it pays; `true`: always try; `false`: off (not even offered). */
  enabled?: boolean | 'auto'
  /** Codecs to offer or accept, in order of preference. */
  codecs?: string[]
  /** Smallest payload worth compressing, bytes. */
  threshold?: number
  /** zlib level, 0–9. */
  level?: number
}

export interface ResolvedCompressionOptions {
  /** Offered (or accepted) in HELLO: the peer may send us compressed frames. */
  enabled: boolean
  /** How we decide for what we send. */
  mode: CompressionMode
  codecs: string[]
  threshold: number
  level: number
}

export function resolveCompressionOptions(
  options: CompressionOptions | boolean | undefined,
): ResolvedCompressionOptions {
  const o: CompressionOptions = typeof options === 'boolean' ? { enabled: options } : (options ?? {})
  const enabled = o.enabled ?? 'auto'
  if (enabled !== true && enabled !== false && enabled !== 'auto')
    invalidOption('compression.enabled', `must be true, false or 'auto', got ${JSON.stringify(enabled)}`)
  const codecs = o.codecs ?? [...SUPPORTED_CODECS]
  for (const codec of codecs) {
    if (!(SUPPORTED_CODECS as readonly string[]).includes(codec)) {
      invalidOption(
        'compression.codecs',
        `has unknown codec ${JSON.stringify(codec)}; known: ${SUPPORTED_CODECS.join(', ')}`,
      )
    }
  }
  const level = o.level ?? DEFAULT_COMPRESSION_LEVEL
  if (!Number.isInteger(level) || level < 0 || level > 9)
    invalidOption('compression.level', `must be 0–9, got ${level}`)
  return {
    enabled: enabled !== false,
    mode: enabled === 'auto' ? 'auto' : enabled ? 'always' : 'never',
    codecs,
    threshold: nonNegativeIntOption('compression.threshold', o.threshold, DEFAULT_COMPRESSION_THRESHOLD),
    level,
  }
}

/** The first codec of `offered` (the client's preference order) that `accepted` also has. */
export function negotiateCodec(
  offered: readonly string[] | undefined,
  accepted: readonly string[],
): string | undefined {
  return offered?.find((codec) => accepted.includes(codec))
}

/**
 * Compresses payloads above the threshold, and only when that makes them smaller. Payloads
 * under ASYNC_DEFLATE_MIN are deflated on the event loop (zlib's sync API: at level 1 a 16 KiB
 * payload takes tens of microseconds, and messages keep their order without a queue); larger
 * ones may go to zlib's thread pool through `compressAsync`, whose caller keeps the order.
 * With a governor (compression 'auto'), nothing is tried while the governor says it does not pay.
 */
export class Compressor {
  readonly codec: string
  readonly threshold: number
  readonly level: number
  #governor: CompressionGovernor | undefined
  #newGovernor: (() => CompressionGovernor) | undefined

  /**
   * `governor` may be a function that makes it: then it is made by the first payload of
   * `threshold` bytes or more (or the first read of `governor`), so a connection that only ever
   * sends small payloads holds none (about 400 bytes with its event-loop probe, per connection).
   */
  constructor(
    codec: string,
    options: ResolvedCompressionOptions,
    governor?: CompressionGovernor | (() => CompressionGovernor),
  ) {
    this.codec = codec
    this.threshold = options.threshold
    this.level = options.level
    if (typeof governor === 'function') this.#newGovernor = governor
    else this.#governor = governor
  }

  /** Decides whether compressing pays ('auto'); undefined: always try (`compression: true`). */
  get governor(): CompressionGovernor | undefined {
    if (this.#governor === undefined && this.#newGovernor !== undefined) {
      this.#governor = this.#newGovernor()
      this.#newGovernor = undefined
    }
    return this.#governor
  }

  /** Attempts to skip before trying again, after compression did not pay. */
  #skip = 0
  #backoff = 0

  /**
   * The compressed payload, or undefined when it should go as it is. Deflate costs tens of
   * microseconds even when it gains nothing (and 1.7 ms for 64 KiB of random bytes), so data
   * that looks random is not tried at all, and after an attempt that saved less than a tenth,
   * the next 1, 2, 4 … 64 payloads are sent as they are before trying again.
   */
  compress(payload: Buffer): Buffer | undefined {
    if (!this.#shouldTry(payload)) return undefined
    const governor = this.governor
    if (governor === undefined) return this.#result(payload, deflateRawSync(payload, { level: this.level }))
    const started = performance.now()
    const out = deflateRawSync(payload, { level: this.level })
    governor.deflated(performance.now() - started)
    return this.#result(payload, out)
  }

  /**
   * As `compress`, for a payload of ASYNC_DEFLATE_MIN or more: undefined when it goes as it is
   * (decided now), else a promise of the compressed payload (or undefined when that did not pay),
   * deflated on zlib's thread pool. Never rejects: a failed deflate sends the payload as it is.
   */
  compressAsync(payload: Buffer): Promise<Buffer | undefined> | undefined {
    if (!this.#shouldTry(payload)) return undefined
    const started = performance.now()
    return deflateRawAsync(payload, { level: this.level }).then(
      (out) => {
        // Wall time on the pool, not event-loop time: a cost estimate on the safe side.
        this.governor?.deflated(performance.now() - started)
        return this.#result(payload, out)
      },
      () => undefined,
    )
  }

  #shouldTry(payload: Buffer): boolean {
    const eligible = payload.length >= this.threshold && payload.length > 0
    if (!eligible) {
      // Small payloads count towards the rate once a governor exists; they never make one.
      this.#governor?.sent(payload.length, false)
      return false
    }
    const governor = this.governor
    governor?.sent(payload.length, true)
    if (governor !== undefined && !governor.compressing) return false
    if (this.#skip > 0) {
      this.#skip--
      return false
    }
    if (looksIncompressible(payload)) {
      this.#didNotPay()
      return false
    }
    return true
  }

  #result(payload: Buffer, out: Buffer): Buffer | undefined {
    if (out.length > payload.length * 0.9) return this.#didNotPay()
    this.#backoff = 0
    return out
  }

  #didNotPay(): undefined {
    this.#backoff = Math.min(Math.max(1, this.#backoff * 2), 64)
    this.#skip = this.#backoff
    return undefined
  }
}

/**
 * Inflates a COMPRESSED value without ever producing more than `maxLength` bytes: a value
 * that would inflate past it (a zip bomb) fails with RESOURCE_EXHAUSTED, a corrupt one with
 * DATA_LOSS.
 */
export function decompress(codec: string, value: Buffer, maxLength: number): Buffer {
  checkCodec(codec)
  try {
    // Z_FINISH (the default): a stream cut short is corrupt, not a shorter message.
    return inflateRawSync(value, { maxOutputLength: maxLength })
  } catch (err) {
    throw inflateError(err, maxLength)
  }
}

/** As `decompress`, on zlib's thread pool (the event loop stays free); rejects with the same codes. */
export async function decompressAsync(codec: string, value: Buffer, maxLength: number): Promise<Buffer> {
  checkCodec(codec)
  try {
    return await inflateRawAsync(value, { maxOutputLength: maxLength })
  } catch (err) {
    throw inflateError(err, maxLength)
  }
}

function checkCodec(codec: string): void {
  if (codec !== 'deflate') throw new RpcError(Code.PROTOCOL_ERROR, `compressed with unknown codec ${codec}`)
}

function inflateError(err: unknown, maxLength: number): RpcError {
  if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
    return new RpcError(
      Code.RESOURCE_EXHAUSTED,
      `compressed value inflates past the limit of ${maxLength} bytes`,
      {
        cause: err,
      },
    )
  }
  return new RpcError(Code.DATA_LOSS, 'compressed value is corrupt', { cause: err })
}

/**
 * A cheap guess that data will not compress: 256 bytes sampled across the payload, and how
 * many distinct byte values they hold. Random, encrypted or already compressed data shows about
 * 162 (in 100,000 random samples never fewer than 139); text and JSON show a few dozen. The line
 * is drawn at more than half of all byte values, far from both (at 150 it misjudged about 1 % of
 * random payloads).
 */
export function looksIncompressible(payload: Buffer): boolean {
  const seen = new Uint8Array(256)
  const step = Math.max(1, Math.floor(payload.length / 256))
  let distinct = 0
  for (let i = 0; i < payload.length; i += step) {
    if (seen[payload[i]] === 0) {
      seen[payload[i]] = 1
      distinct++
    }
  }
  return distinct > 128
}
