import { isUtf8 } from 'node:buffer'
import { Code } from './codes'
import { type Frame, type FrameId, HEADER_SIZE, PROTOCOL_VERSION, readId } from './frame'
import { nonNegativeIntOption, positiveIntOption } from './options'
import { RpcError } from './rpc-error'

/** Default limit on a whole frame (header + type + value), as in the rest of srpc. */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
/** Default limit on the type field: routes are short names, not payloads. */
export const DEFAULT_MAX_TYPE_LENGTH = 1024

/** Spent chunk slots tolerated at the front of the list before it is compacted. */
const COMPACT_AFTER = 1024

export interface FrameDecoderOptions {
  /** Largest frame accepted, header included, in bytes. */
  maxFrameSize?: number
  /** Largest type (route) accepted, in bytes. */
  maxTypeLength?: number
  /** How errors name the other end, e.g. `the server at 127.0.0.1:8443`; default `the peer`. */
  peerName?: string
}

/**
 * A streaming decoder: feed it socket chunks split anywhere, get whole frames in order.
 *
 * It keeps a list of chunks and a running byte count, validates each header the moment it is
 * complete (before waiting for or allocating the body), hands out a zero-copy `subarray` when a
 * value lies inside one chunk, and copies only values that span chunks. After the first
 * violation it stays failed and throws the same RpcError(PROTOCOL_ERROR) on every call.
 * When `push` returns, less than one frame is buffered, so memory stays below `maxFrameSize`.
 */
export class FrameDecoder {
  readonly maxFrameSize: number
  readonly maxTypeLength: number
  readonly peerName: string
  // Live chunks are #chunks[#head..]; the list is consumed by index because Array#shift is
  // linear on long arrays (a frame sent one byte per read would make decoding quadratic).
  #chunks: Buffer[] = []
  #head = 0
  /** Read position inside #chunks[#head]. */
  #offset = 0
  #buffered = 0
  #error: RpcError | null = null
  // The header of the frame whose body we are waiting for; #bodyLength < 0 means none.
  #flags = 0
  #id: FrameId = 0
  #typeLength = 0
  #valueLength = 0
  #bodyLength = -1
  /** A valid header was read: a bad version after that is a broken peer, not a foreign protocol. */
  #spokeSrpc = false
  /** Scratch space for a header that spans chunks. */
  #header = Buffer.alloc(HEADER_SIZE)

  /** Throws RpcError(INVALID_ARGUMENT) naming the option when a limit is not a valid integer. */
  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameSize = positiveIntOption('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE)
    this.maxTypeLength = nonNegativeIntOption('maxTypeLength', options.maxTypeLength, DEFAULT_MAX_TYPE_LENGTH)
    this.peerName = options.peerName ?? 'the peer'
  }

  /** Bytes received but not yet handed out as frames (a pending frame's header not included). */
  get bufferedBytes(): number {
    return this.#buffered
  }

  get failed(): boolean {
    return this.#error !== null
  }

  /**
   * Adds a chunk and calls `onFrame` for every frame it completes, in order.
   * Throws RpcError(PROTOCOL_ERROR) on a malformed header, and keeps throwing it after that.
   * An exception from `onFrame` propagates unchanged; frames still buffered are delivered by the
   * next `push`.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    if (this.#error) throw this.#error
    if (chunk.length > 0) {
      this.#chunks.push(chunk)
      this.#buffered += chunk.length
    }
    for (;;) {
      if (this.#bodyLength < 0) {
        if (this.#buffered < HEADER_SIZE) return
        this.#readHeader()
      }
      if (this.#buffered < this.#bodyLength) return
      const type = this.#typeLength === 0 ? '' : this.#readType()
      const value = this.#take(this.#valueLength)
      const frame: Frame = { flags: this.#flags, id: this.#id, type, value }
      this.#bodyLength = -1
      onFrame(frame)
    }
  }

  /** Convenience for tests and tools: decodes a chunk into an array of frames. */
  decode(chunk: Buffer): Frame[] {
    const frames: Frame[] = []
    this.push(chunk, (frame) => frames.push(frame))
    return frames
  }

  /** Call at end of input: a partial frame left over (even a bare header) is a truncated stream. */
  end(): void {
    if (this.#error) throw this.#error
    if (this.#bodyLength >= 0) {
      this.#fail(
        `stream ended inside a frame (header read, ${this.#buffered} of ${this.#bodyLength} body bytes)`,
      )
    }
    if (this.#buffered > 0) this.#fail(`stream ended inside a frame header (${this.#buffered} bytes)`)
  }

  #readHeader(): void {
    // Read the fields in place when the header lies in one chunk; no view is allocated.
    let header = this.#chunks[this.#head]
    let at = this.#offset
    if (header.length - at >= HEADER_SIZE) {
      this.#buffered -= HEADER_SIZE
      this.#advance(header, at + HEADER_SIZE)
    } else {
      header = this.#copyInto(this.#header, HEADER_SIZE)
      at = 0
    }
    const version = header[at]
    if (version !== PROTOCOL_VERSION) {
      this.#fail(
        this.#spokeSrpc
          ? `unsupported frame version ${version}`
          : `${this.peerName} ${describeForeignBytes(header.subarray(at, at + HEADER_SIZE))}`,
      )
    }
    const typeLength = (header[at + 10] << 8) | header[at + 11]
    const valueLength = header.readUInt32BE(at + 12)
    if (typeLength > this.maxTypeLength) {
      this.#fail(`frame type is ${typeLength} bytes; the limit is ${this.maxTypeLength}`)
    }
    if (HEADER_SIZE + typeLength + valueLength > this.maxFrameSize) {
      this.#fail(
        `frame of ${HEADER_SIZE + typeLength + valueLength} bytes exceeds the limit of ${this.maxFrameSize}`,
      )
    }
    this.#flags = header[at + 1]
    this.#id = readId(header, at + 2)
    this.#typeLength = typeLength
    this.#valueLength = valueLength
    this.#bodyLength = typeLength + valueLength
    this.#spokeSrpc = true
  }

  #readType(): string {
    const bytes = this.#take(this.#typeLength)
    if (!isUtf8(bytes)) this.#fail('frame type is not valid UTF-8')
    return bytes.toString('utf8')
  }

  /** Removes n buffered bytes: a view when they lie in one chunk, a copy when they span chunks. */
  #take(n: number): Buffer {
    if (n === 0) return EMPTY
    const first = this.#chunks[this.#head]
    const start = this.#offset
    if (first.length - start >= n) {
      this.#buffered -= n
      this.#advance(first, start + n)
      return first.subarray(start, start + n)
    }
    return this.#copyInto(Buffer.allocUnsafe(n), n)
  }

  /** Moves n buffered bytes into `out` (which has room for them) and returns it. */
  #copyInto(out: Buffer, n: number): Buffer {
    this.#buffered -= n
    let written = 0
    while (written < n) {
      const chunk = this.#chunks[this.#head]
      const count = Math.min(chunk.length - this.#offset, n - written)
      chunk.copy(out, written, this.#offset, this.#offset + count)
      written += count
      this.#advance(chunk, this.#offset + count)
    }
    return out
  }

  /** Sets the read position to `end` inside the head chunk, dropping the chunk once it is spent. */
  #advance(chunk: Buffer, end: number): void {
    if (end < chunk.length) {
      this.#offset = end
      return
    }
    this.#offset = 0
    // Let go of the spent chunk now; frames handed out keep their own views of it.
    this.#chunks[this.#head++] = EMPTY
    if (this.#head === this.#chunks.length) {
      this.#chunks = []
      this.#head = 0
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head)
      this.#head = 0
    }
  }

  #fail(message: string): never {
    this.#error = new RpcError(Code.PROTOCOL_ERROR, message)
    this.#chunks = []
    this.#head = 0
    this.#buffered = 0
    this.#offset = 0
    this.#bodyLength = -1
    throw this.#error
  }
}

const EMPTY = Buffer.alloc(0)

/**
 * The first bytes of a stream are not an srpc header: say what they look like, so that a client
 * pointed at a web server learns that instead of "unsupported frame version 72".
 */
function describeForeignBytes(first: Buffer): string {
  const text = first.toString('latin1')
  // A server answers with a status line, a client starts with a request line (or HTTP/2's preface).
  if (/^(?:HTTP\/\d|[A-Z]{3,7} \S|PRI \* HTTP)/.test(text))
    return 'does not speak srpc; its first bytes look like HTTP'
  const hex = Array.from(first.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ')
  return `does not speak srpc (frame version ${first[0]}, first bytes ${hex})`
}
