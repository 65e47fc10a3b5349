import { randomBytes } from 'node:crypto'
import type { PayloadKind } from './messages'

/** Every request carries its sequence number as 8 hex digits, so a reply matched to the wrong request fails. */
export const STAMP_LENGTH = 8
const JSON_PREFIX = '{"seq":"'

/** Where the stamp sits in a payload of this kind. */
export function stampOffset(kind: PayloadKind): number {
  return kind === 'json' ? JSON_PREFIX.length : 0
}

const HEX = '0123456789abcdef'

/** Writes `seq` (mod 2^32) as 8 lowercase hex digits at `offset`. */
export function stamp(buf: Buffer, offset: number, seq: number): void {
  let v = seq >>> 0
  for (let i = offset + STAMP_LENGTH - 1; i >= offset; i--) {
    buf[i] = HEX.charCodeAt(v & 15)
    v >>>= 4
  }
}

/** Reads a stamp written by `stamp`, or -1 when the bytes are not a stamp. */
export function readStamp(buf: Buffer, offset: number): number {
  if (buf.length < offset + STAMP_LENGTH) return -1
  let v = 0
  for (let i = offset; i < offset + STAMP_LENGTH; i++) {
    const d = HEX.indexOf(String.fromCharCode(buf[i]))
    if (d < 0) return -1
    v = v * 16 + d
  }
  return v
}

const cache = new Map<string, Buffer>()

/** A payload template of exactly `size` bytes (at least 8). Deterministic except for 'random'. */
export function payloadTemplate(kind: PayloadKind, size: number): Buffer {
  const key = `${kind}:${size}`
  let buf = cache.get(key)
  if (buf === undefined) {
    buf = kind === 'json' ? jsonPayload(size) : kind === 'random' ? randomBytes(size) : patternPayload(size)
    stamp(buf, stampOffset(kind), 0)
    cache.set(key, buf)
  }
  return buf
}

function patternPayload(size: number): Buffer {
  const buf = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + 7) & 0xff
  return buf
}

/** JSON-like text of exactly `size` bytes: an array of small records, as an API would send. */
function jsonPayload(size: number): Buffer {
  let seed = 42
  const next = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed
  }
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet']
  const head = `${JSON_PREFIX}00000000","items":[`
  const tail = '],"pad":"'
  const end = '"}'
  const items: string[] = []
  let length = head.length + tail.length + end.length
  for (;;) {
    const n = next()
    const item = JSON.stringify({
      id: n % 100000,
      name: `${words[n % 10]}-${words[(n >> 4) % 10]}`,
      active: (n & 1) === 1,
      score: (n % 10000) / 100,
      tags: [words[(n >> 8) % 10], words[(n >> 12) % 10]],
    })
    const extra = item.length + (items.length > 0 ? 1 : 0)
    if (length + extra > size) break
    items.push(item)
    length += extra
  }
  const text = head + items.join(',') + tail + 'x'.repeat(size - length) + end
  const buf = Buffer.from(text, 'latin1')
  if (buf.length !== size) throw new Error(`json payload is ${buf.length} bytes, wanted ${size}`)
  return buf
}

/** A copy of the template the caller may stamp and send. */
export function freshPayload(kind: PayloadKind, size: number): Buffer {
  return Buffer.from(payloadTemplate(kind, size))
}

/**
 * Chunk `index` of a server stream: stamped pattern bytes, built identically by every server.
 * `headroom` bytes are left free in front (the raw server writes its length prefix there).
 */
export function streamChunk(index: number, size: number, headroom = 0): Buffer {
  const chunk = Buffer.allocUnsafe(headroom + size)
  payloadTemplate('binary', size).copy(chunk, headroom)
  stamp(chunk, headroom, index)
  return CORRUPT_EVERY === 0 ? chunk : maybeCorrupt(chunk)
}

/** Describes how `chunk` differs from chunk `index`, or returns undefined when it is right. */
export function checkStreamChunk(chunk: Buffer, index: number, size: number): string | undefined {
  if (chunk.length !== size) return `chunk ${index} has ${chunk.length} bytes, expected ${size}`
  const got = readStamp(chunk, 0)
  if (got !== index >>> 0) return `chunk ${index} carries index ${got}`
  const template = payloadTemplate('binary', size)
  if (chunk.compare(template, STAMP_LENGTH, size, STAMP_LENGTH, size) !== 0)
    return `chunk ${index} has wrong bytes`
  return undefined
}

/** The request of a server stream: [count u32 BE][size u32 BE]. */
export function encodeStreamRequest(count: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(8)
  buf.writeUInt32BE(count, 0)
  buf.writeUInt32BE(size, 4)
  return buf
}

export const MAX_STREAM_COUNT = 1_000_000
export const MAX_STREAM_CHUNK = 4 * 1024 * 1024

export function decodeStreamRequest(buf: Buffer): { count: number; size: number } {
  if (buf.length !== 8) throw new Error(`stream request has ${buf.length} bytes, expected 8`)
  const count = buf.readUInt32BE(0)
  const size = buf.readUInt32BE(4)
  if (count > MAX_STREAM_COUNT || size < STAMP_LENGTH || size > MAX_STREAM_CHUNK) {
    throw new Error(`stream request out of bounds: ${count} × ${size}`)
  }
  return { count, size }
}

/** What a sink (one-way session) answers once the client closed its half. */
export interface SinkSummary {
  count: number
  bytes: number
  error?: string
}

/**
 * The server side of the one-way scenario: checks every message (stamp in order, pattern bytes)
 * and counts them. The first wrong message is remembered and reported in the summary.
 */
export class SinkChecker {
  count = 0
  bytes = 0
  error: string | undefined

  accept(message: Buffer): void {
    if (this.error === undefined) {
      const got = readStamp(message, 0)
      if (got !== this.count >>> 0) {
        this.error = `message ${this.count} carries index ${got}`
      } else {
        const template = payloadTemplate('binary', message.length)
        if (message.compare(template, STAMP_LENGTH, message.length, STAMP_LENGTH, message.length) !== 0) {
          this.error = `message ${this.count} has wrong bytes`
        }
      }
    }
    this.count++
    this.bytes += message.length
  }

  summary(): Buffer {
    const summary: SinkSummary = { count: this.count, bytes: this.bytes }
    if (this.error !== undefined) summary.error = this.error
    return Buffer.from(JSON.stringify(summary))
  }
}

export function parseSinkSummary(buf: Buffer | undefined): SinkSummary {
  if (buf === undefined) throw new Error('the sink ended without a summary')
  const parsed = JSON.parse(buf.toString('utf8')) as SinkSummary
  if (typeof parsed?.count !== 'number')
    throw new Error(`bad sink summary ${buf.toString('utf8').slice(0, 80)}`)
  return parsed
}

/**
 * A self-check of the harness: with SRPC_BENCH_CORRUPT=1 in the environment, servers flip one
 * byte in every 100th echo reply and stream chunk, and clients in every 100th one-way message;
 * every cell must then fail.
 */
const CORRUPT_EVERY = process.env.SRPC_BENCH_CORRUPT === '1' ? 100 : 0
/** Values of 1 MiB (u1m) are corrupted every 5th: a --quick cell makes only a few dozen calls. */
const CORRUPT_EVERY_LARGE = 5
const LARGE = 1024 * 1024
let corruptCount = 0

/** `data` itself, except under SRPC_BENCH_CORRUPT: then now and then a copy with one byte flipped. */
export function maybeCorrupt(data: Buffer): Buffer {
  if (CORRUPT_EVERY === 0) return data
  const every = data.length >= LARGE ? CORRUPT_EVERY_LARGE : CORRUPT_EVERY
  if (++corruptCount % every !== 0) return data
  const copy = Buffer.from(data)
  copy[copy.length - 1] ^= 0xff
  return copy
}
