import { decodeLatin1, decodeUtf8Strict, readU16, readU32 } from './bytes'
import { Code } from './codes'
import { type Alloc, type Frame, type FrameId, HEADER_SIZE, PROTOCOL_VERSION, readId } from './frame'
import { invalidOption, nonNegativeIntOption, positiveIntOption } from './options'
import { RpcError } from './rpc-error'
import { decodeAsciiCached } from './type-cache'

/** Default limit on a whole frame (header + type + value), as in the rest of srpc. */
export const DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
/** Default limit on the type field: routes are short names, not payloads. */
export const DEFAULT_MAX_TYPE_LENGTH = 1024

/** Spent chunk slots tolerated at the front of the list before it is compacted. */
const COMPACT_AFTER = 1024
/**
 * The chunk list is kept and refilled from its start each time it empties (a new list each time
 * cost an array and its backing store per read); one that grew longer than this (a frame that
 * spanned many reads) is let go when it empties, so an idle connection holds a small one.
 */
const KEEP_SLOTS = 16
/**
 * Values at least this large are assembled as their bytes arrive: each chunk is copied into the
 * value's own buffer and let go at once, instead of every chunk being held until the last one
 * comes. One copy either way; the chunks (16 KiB each over TLS) no longer pile up to twice the
 * value in memory, nor live long enough to be promoted to V8's old generation.
 */
const ASSEMBLE_MIN = 64 * 1024
/**
 * The value's buffer is allocated once this share (1/2^n) of it has arrived, so that a header
 * alone, or a trickle after it, cannot make us allocate many times what the peer sent.
 */
const ASSEMBLE_AFTER_SHIFT = 3

export interface FrameDecoderOptions<B extends Uint8Array = Uint8Array> {
  /** Largest frame accepted, header included, in bytes. */
  maxFrameSize?: number
  /** Largest type (route) accepted, in bytes. */
  maxTypeLength?: number
  /** How errors name the other end, e.g. `the server at 127.0.0.1:8443`; default `the peer`. */
  peerName?: string
  /**
   * Allocates the buffer a value that spans chunks is copied into (default `new Uint8Array`).
   * Values inside one chunk are views of it, so with Node Buffer chunks, `Buffer.allocUnsafe`
   * makes every value a Buffer, and spares the zero-filling.
   */
  alloc?: Alloc<B>
  /**
   * Hand every frame to `onFrame` in one object that the decoder refills, instead of a new
   * object per frame: for a consumer that takes what it needs before `onFrame` returns (the
   * value it keeps is its own; the object is not). `decode()` still returns separate frames.
   */
  reuseFrame?: boolean
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
export class FrameDecoder<B extends Uint8Array = Uint8Array> {
  readonly maxFrameSize: number
  readonly maxTypeLength: number
  readonly peerName: string
  // Live chunks are #chunks[#head..#tail); the list is consumed by index because Array#shift is
  // linear on long arrays (a frame sent one byte per read would make decoding quadratic).
  #chunks: B[]
  #head = 0
  #tail = 0
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
  /** The value being assembled as it arrives (see ASSEMBLE_MIN), its type and bytes filled so far. */
  #assembly: B | null = null
  #assemblyType = ''
  #filled = 0
  /** A valid header was read: a bad version after that is a broken peer, not a foreign protocol. */
  #spokeSrpc = false
  /** Scratch space for a header that spans chunks; made the first time one does (most connections never see one). */
  #header: Uint8Array | undefined
  #alloc: Alloc<B>
  /** The value of empty frames, and what a spent chunk slot holds: one per allocator, shared by every decoder. */
  #empty: B
  /** The one frame object handed out with `reuseFrame`. */
  #frame: Frame<B> | undefined

  /**
   * Throws RpcError(INVALID_ARGUMENT) naming the option when a limit is not a valid integer.
   * Without `alloc`, B is Uint8Array: a B other than that needs the matching allocator.
   */
  constructor(options: FrameDecoderOptions<B> = {}) {
    this.maxFrameSize = positiveIntOption('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE)
    this.maxTypeLength = nonNegativeIntOption('maxTypeLength', options.maxTypeLength, DEFAULT_MAX_TYPE_LENGTH)
    this.peerName = options.peerName ?? 'the peer'
    if (options.alloc !== undefined && typeof options.alloc !== 'function') {
      invalidOption('alloc', `must be a function, got ${typeof options.alloc}`)
    }
    this.#alloc = options.alloc ?? (newBytes as Alloc<B>)
    this.#empty = emptyOf(this.#alloc)
    // One slot: a connection that reads a frame or more at a time never needs a second one.
    this.#chunks = [this.#empty]
    if (options.reuseFrame === true) this.#frame = { flags: 0, id: 0, type: '', value: this.#empty }
  }

  /** Bytes received but not yet handed out as frames (a pending frame's header not included). */
  get bufferedBytes(): number {
    return this.#buffered + this.#filled
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
  push(chunk: B, onFrame: (frame: Frame<B>) => void): void {
    if (this.#error) throw this.#error
    if (this.#assembly !== null) {
      const used = this.#fill(chunk)
      if (this.#filled < this.#valueLength) return
      const frame: Frame<B> = {
        flags: this.#flags,
        id: this.#id,
        type: this.#assemblyType,
        value: this.#assembly,
      }
      this.#assembly = null
      this.#filled = 0
      this.#bodyLength = -1
      // The rest of the chunk is queued first: if onFrame throws, the next push delivers it.
      if (used < chunk.length) {
        this.#chunks[this.#tail++] = chunk.subarray(used) as B
        this.#buffered += chunk.length - used
      }
      onFrame(frame)
    } else if (chunk.length > 0) {
      this.#chunks[this.#tail++] = chunk
      this.#buffered += chunk.length
    }
    for (;;) {
      if (this.#bodyLength < 0) {
        if (this.#buffered < HEADER_SIZE) return
        this.#readHeader()
      }
      if (this.#buffered < this.#bodyLength) {
        if (
          this.#valueLength >= ASSEMBLE_MIN &&
          this.#buffered >= this.#typeLength + (this.#valueLength >>> ASSEMBLE_AFTER_SHIFT)
        ) {
          this.#startAssembly()
        }
        return
      }
      const type = this.#typeLength === 0 ? '' : this.#readType()
      const value = this.#take(this.#valueLength)
      this.#bodyLength = -1
      const frame = this.#frame
      if (frame === undefined) {
        onFrame({ flags: this.#flags, id: this.#id, type, value })
        continue
      }
      frame.flags = this.#flags
      frame.id = this.#id
      frame.type = type
      frame.value = value
      onFrame(frame)
      // Keep no view of a chunk past the call: an idle connection would hold its last read.
      frame.value = this.#empty
    }
  }

  /** Convenience for tests and tools: decodes a chunk into an array of frames. */
  decode(chunk: B): Frame<B>[] {
    const frames: Frame<B>[] = []
    this.push(chunk, (frame) => frames.push(this.#frame === undefined ? frame : { ...frame }))
    return frames
  }

  /** Call at end of input: a partial frame left over (even a bare header) is a truncated stream. */
  end(): void {
    if (this.#error) throw this.#error
    if (this.#bodyLength >= 0) {
      const received = this.#assembly === null ? this.#buffered : this.#typeLength + this.#filled
      this.#fail(`stream ended inside a frame (header read, ${received} of ${this.#bodyLength} body bytes)`)
    }
    if (this.#buffered > 0) this.#fail(`stream ended inside a frame header (${this.#buffered} bytes)`)
  }

  #readHeader(): void {
    // Read the fields in place when the header lies in one chunk; no view is allocated.
    const first = this.#chunks[this.#head]
    let header: Uint8Array = first
    let at = this.#offset
    if (first.length - at >= HEADER_SIZE) {
      this.#buffered -= HEADER_SIZE
      this.#advance(first, at + HEADER_SIZE)
    } else {
      this.#header ??= new Uint8Array(HEADER_SIZE)
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
    const typeLength = readU16(header, at + 10)
    const valueLength = readU32(header, at + 12)
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
    const n = this.#typeLength
    const first = this.#chunks[this.#head]
    const start = this.#offset
    if (first.length - start >= n) {
      // Routes are short ASCII: read in place, with no view of the chunk (and seen before, mostly).
      const ascii = decodeAsciiCached(first, start, start + n)
      if (ascii !== undefined) {
        this.#buffered -= n
        this.#advance(first, start + n)
        return ascii
      }
    }
    const type = decodeUtf8Strict(this.#take(n))
    if (type === undefined) this.#fail('frame type is not valid UTF-8')
    return type
  }

  /**
   * The body of a large frame has begun to arrive (all of what is buffered belongs to it): reads
   * its type, allocates its value and moves the buffered bytes in; later chunks go straight in.
   */
  #startAssembly(): void {
    this.#assemblyType = this.#typeLength === 0 ? '' : this.#readType()
    const filled = this.#buffered
    this.#assembly = this.#copyInto(this.#alloc(this.#valueLength), filled)
    this.#filled = filled
  }

  /** Copies the start of `chunk` into the value being assembled; returns how many bytes it took. */
  #fill(chunk: B): number {
    const value = this.#assembly as B
    const count = Math.min(chunk.length, this.#valueLength - this.#filled)
    if (count <= SMALL_COPY) {
      for (let i = 0; i < count; i++) value[this.#filled + i] = chunk[i]
    } else {
      value.set(
        count === chunk.length ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, count),
        this.#filled,
      )
    }
    this.#filled += count
    return count
  }

  /** Removes n buffered bytes: a view when they lie in one chunk, a copy when they span chunks. */
  #take(n: number): B {
    if (n === 0) return this.#empty
    const first = this.#chunks[this.#head]
    const start = this.#offset
    if (first.length - start >= n) {
      this.#buffered -= n
      this.#advance(first, start + n)
      // A subarray has its array's class (a Buffer's is a Buffer), so it is a B.
      return first.subarray(start, start + n) as B
    }
    return this.#copyInto(this.#alloc(n), n)
  }

  /** Moves n buffered bytes into `out` (which has room for them) and returns it. */
  #copyInto<T extends Uint8Array>(out: T, n: number): T {
    this.#buffered -= n
    let written = 0
    while (written < n) {
      const chunk = this.#chunks[this.#head]
      const from = this.#offset
      const count = Math.min(chunk.length - from, n - written)
      if (count <= SMALL_COPY) {
        // A header or a few bytes: a loop costs less than a view of the chunk.
        for (let i = 0; i < count; i++) out[written + i] = chunk[from + i]
      } else if (from === 0 && count === chunk.length) {
        out.set(chunk, written)
      } else {
        // A plain view: a Buffer's subarray costs more (it looks up its species constructor).
        out.set(new Uint8Array(chunk.buffer, chunk.byteOffset + from, count), written)
      }
      written += count
      this.#advance(chunk, from + count)
    }
    return out
  }

  /** Sets the read position to `end` inside the head chunk, dropping the chunk once it is spent. */
  #advance(chunk: B, end: number): void {
    if (end < chunk.length) {
      this.#offset = end
      return
    }
    this.#offset = 0
    // Let go of the spent chunk now; frames handed out keep their own views of it.
    this.#chunks[this.#head++] = this.#empty
    if (this.#head === this.#tail) {
      this.#head = 0
      this.#tail = 0
      if (this.#chunks.length > KEEP_SLOTS) this.#chunks = [this.#empty]
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#tail) {
      this.#chunks = this.#chunks.slice(this.#head, this.#tail)
      this.#tail -= this.#head
      this.#head = 0
    }
  }

  #fail(message: string): never {
    this.#error = new RpcError(Code.PROTOCOL_ERROR, message)
    this.#assembly = null
    this.#filled = 0
    this.#chunks = []
    this.#head = 0
    this.#tail = 0
    this.#buffered = 0
    this.#offset = 0
    this.#bodyLength = -1
    throw this.#error
  }
}

const newBytes: Alloc<Uint8Array> = (size) => new Uint8Array(size)
/** Bytes copied by a loop rather than through a subarray view and `set`. */
const SMALL_COPY = 32

/**
 * The first bytes of a stream are not an srpc header: say what they look like, so that a client
 * pointed at a web server learns that instead of "unsupported frame version 72".
 */
function describeForeignBytes(first: Uint8Array): string {
  const text = decodeLatin1(first, 0, first.length)
  // A server answers with a status line, a client starts with a request line (or HTTP/2's preface).
  if (/^(?:HTTP\/\d|[A-Z]{3,7} \S|PRI \* HTTP)/.test(text))
    return 'does not speak srpc; its first bytes look like HTTP'
  const hex = Array.from(first.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ')
  return `does not speak srpc (frame version ${first[0]}, first bytes ${hex})`
}

/**
 * The empty value of each allocator, made once: a decoder per connection made its own (a view and
 * its ArrayBuffer, 184 bytes per connection end). Nothing can be written into zero bytes.
 */
const EMPTIES = new WeakMap<Alloc<Uint8Array>, Uint8Array>()
function emptyOf<B extends Uint8Array>(alloc: Alloc<B>): B {
  let empty = EMPTIES.get(alloc) as B | undefined
  if (empty === undefined) {
    empty = alloc(0)
    EMPTIES.set(alloc, empty)
  }
  return empty
}
