/**
 * The raw TLS reference's framing: [u32 BE length][payload]. A connection's first byte picks
 * what the server does with it, so the echo path carries no per-frame opcode.
 */
export const RawMode = {
  ECHO: 0x45, // 'E': every frame is echoed
  DEFLATE_ECHO: 0x5a, // 'Z': frames are deflate-raw; the server inflates, then deflates the echo
  STREAM: 0x53, // 'S': a request frame [count][size] is answered with `count` frames of `size` bytes
  SINK: 0x4b, // 'K': frames are checked and counted; an empty frame ends, the summary frame answers
} as const
export type RawMode = (typeof RawMode)[keyof typeof RawMode]

const EMPTY = Buffer.alloc(0)
export const RAW_MAX_FRAME = 16 * 1024 * 1024

export function isRawMode(byte: number): byte is RawMode {
  return Object.values(RawMode).includes(byte as RawMode)
}

export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(4)
  header.writeUInt32BE(length, 0)
  return header
}

/**
 * Splits a byte stream into frames: a list of chunks and a running byte count; a frame that lies
 * in one chunk is handed out as a subarray, one that spans chunks is copied once.
 */
export class FrameReader {
  #chunks: Buffer[] = []
  #offset = 0
  #bytes = 0
  #maxFrame: number

  constructor(maxFrame = RAW_MAX_FRAME) {
    this.#maxFrame = maxFrame
  }

  push(chunk: Buffer, onFrame: (payload: Buffer) => void): void {
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    while (this.#bytes >= 4) {
      const length = this.#peekLength()
      if (length > this.#maxFrame) throw new Error(`frame of ${length} bytes exceeds ${this.#maxFrame}`)
      if (this.#bytes < 4 + length) return
      this.#skip(4)
      onFrame(this.#take(length))
    }
  }

  #peekLength(): number {
    const first = this.#chunks[0]
    if (first.length - this.#offset >= 4) return first.readUInt32BE(this.#offset)
    let value = 0
    let chunk = 0
    let offset = this.#offset
    for (let i = 0; i < 4; i++) {
      while (offset >= this.#chunks[chunk].length) {
        chunk++
        offset = 0
      }
      value = value * 256 + this.#chunks[chunk][offset++]
    }
    return value
  }

  #skip(n: number): void {
    this.#take(n)
  }

  #take(n: number): Buffer {
    if (n === 0) return EMPTY
    this.#bytes -= n
    const first = this.#chunks[0]
    if (first.length - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n)
      this.#offset += n
      if (this.#offset === first.length) {
        this.#chunks.shift()
        this.#offset = 0
      }
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.#chunks[0]
      const available = chunk.length - this.#offset
      const count = Math.min(available, n - filled)
      chunk.copy(out, filled, this.#offset, this.#offset + count)
      filled += count
      this.#offset += count
      if (this.#offset === chunk.length) {
        this.#chunks.shift()
        this.#offset = 0
      }
    }
    return out
  }
}
