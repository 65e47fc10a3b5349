import { isUtf8 } from 'node:buffer'
import { Code } from './codes'
import { type Frame, type FrameId, HEADER_SIZE, PROTOCOL_VERSION, readId } from './frame'
import { RpcError } from './rpc-error'

/** Default limit on a whole frame (header + type + value), as in the rest of srpc. */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
/** Default limit on the type field: routes are short names, not payloads. */
export const DEFAULT_MAX_TYPE_LENGTH = 1024

export interface FrameDecoderOptions {
  /** Largest frame accepted, header included, in bytes. */
  maxFrameSize?: number
  /** Largest type (route) accepted, in bytes. */
  maxTypeLength?: number
}

/**
 * A streaming decoder: feed it socket chunks split anywhere, get whole frames in order.
 *
 * It keeps a list of chunks and a running byte count, validates each header the moment it is
 * complete (before waiting for or allocating the body), hands out a zero-copy `subarray` when a
 * value lies inside one chunk, and copies only values that span chunks. After the first
 * violation it stays failed and throws the same RpcError(PROTOCOL_ERROR) on every call.
 */
export class FrameDecoder {
  readonly maxFrameSize: number
  readonly maxTypeLength: number
  #chunks: Buffer[] = []
  /** Read position inside #chunks[0]. */
  #offset = 0
  #buffered = 0
  #error: RpcError | null = null
  // The header of the frame whose body we are waiting for; #bodyLength < 0 means none.
  #flags = 0
  #id: FrameId = 0
  #typeLength = 0
  #valueLength = 0
  #bodyLength = -1

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
    this.maxTypeLength = options.maxTypeLength ?? DEFAULT_MAX_TYPE_LENGTH
  }

  /** Bytes received but not yet handed out as frames. */
  get bufferedBytes(): number {
    return this.#buffered
  }

  get failed(): boolean {
    return this.#error !== null
  }

  /**
   * Adds a chunk and calls `onFrame` for every frame it completes, in order.
   * Throws RpcError(PROTOCOL_ERROR) on a malformed header, and keeps throwing it after that.
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

  /** Call at end of input: a partial frame left over is a truncated stream. */
  end(): void {
    if (this.#error) throw this.#error
    if (this.#buffered > 0) {
      this.#fail(`stream ended inside a frame (${this.#buffered} bytes of an incomplete frame)`)
    }
  }

  #readHeader(): void {
    const header = this.#take(HEADER_SIZE)
    const version = header[0]
    if (version !== PROTOCOL_VERSION) this.#fail(`unsupported frame version ${version}`)
    const typeLength = (header[10] << 8) | header[11]
    const valueLength = header.readUInt32BE(12)
    if (typeLength > this.maxTypeLength) {
      this.#fail(`frame type is ${typeLength} bytes; the limit is ${this.maxTypeLength}`)
    }
    if (HEADER_SIZE + typeLength + valueLength > this.maxFrameSize) {
      this.#fail(
        `frame of ${HEADER_SIZE + typeLength + valueLength} bytes exceeds the limit of ${this.maxFrameSize}`,
      )
    }
    this.#flags = header[1]
    this.#id = readId(header, 2)
    this.#typeLength = typeLength
    this.#valueLength = valueLength
    this.#bodyLength = typeLength + valueLength
  }

  #readType(): string {
    const bytes = this.#take(this.#typeLength)
    if (!isUtf8(bytes)) this.#fail('frame type is not valid UTF-8')
    return bytes.toString('utf8')
  }

  /** Removes n buffered bytes: a view when they lie in one chunk, a copy when they span chunks. */
  #take(n: number): Buffer {
    if (n === 0) return EMPTY
    this.#buffered -= n
    const first = this.#chunks[0]
    const available = first.length - this.#offset
    if (available >= n) {
      const view = first.subarray(this.#offset, this.#offset + n)
      if (available === n) {
        this.#chunks.shift()
        this.#offset = 0
      } else {
        this.#offset += n
      }
      return view
    }
    const out = Buffer.allocUnsafe(n)
    let written = 0
    while (written < n) {
      const chunk = this.#chunks[0]
      const count = Math.min(chunk.length - this.#offset, n - written)
      chunk.copy(out, written, this.#offset, this.#offset + count)
      written += count
      if (this.#offset + count === chunk.length) {
        this.#chunks.shift()
        this.#offset = 0
      } else {
        this.#offset += count
      }
    }
    return out
  }

  #fail(message: string): never {
    this.#error = new RpcError(Code.PROTOCOL_ERROR, message)
    this.#chunks = []
    this.#buffered = 0
    this.#offset = 0
    throw this.#error
  }
}

const EMPTY = Buffer.alloc(0)
