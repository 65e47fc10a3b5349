import { performance } from 'node:perf_hooks'
import {
  Code,
  DEFAULT_MAX_FRAME_SIZE,
  type FrameId,
  HEADER_SIZE,
  RpcError,
  typeByteLength,
  writeHeader,
} from '@srpc/protocol'
import type { Transport } from './transport'

/**
 * Largest and smallest size of the buffers frames are encoded into. A frame that does not fit in
 * a full-size slab is written as its header (in the slab) followed by its value, uncopied (as is
 * a value of REFERENCE_MIN or more when no slab at hand has room for it).
 */
const SLAB_SIZE = 64 * 1024
const MIN_SLAB_SIZE = 1024
/**
 * A value at least this large is written as it is after its header when no slab at hand has room
 * for it (the current one is full or still being written, and no spare fits), instead of
 * starting a new slab. The turn then leaves as one corked write of several buffers, which Node's
 * TLS copies once into one buffer before encrypting; copying the value into a new slab as well
 * copied it twice whenever a turn needed several slabs, and a busy connection sending 16 KiB
 * values (replies queued behind a full socket, 16 × 16 KiB a turn) allocated a 64 KiB slab every
 * few frames: the spares were all still being written. Like a value over 64 KiB, such a value
 * is read when the turn's output is written, not when it is queued: the caller's buffer must not
 * change until then (Node's own `socket.write` has the same rule).
 */
const REFERENCE_MIN = 16 * 1024

/** The slab size shrinks only after this many turns that needed less, or after this long idle. */
const SHRINK_AFTER_TURNS = 32
const SHRINK_AFTER_IDLE_MS = 1000
/**
 * Written slabs kept for reuse. Writes made in one event-loop turn are confirmed in a later one,
 * so a connection writing more than a slab per turn needs a few in rotation.
 */
const MAX_SPARES = 2
/**
 * Smaller slabs are not kept as a connection's spares: keeping one per idle connection would
 * hold memory for nothing. The smallest size is shared by the process instead (smallSlabs).
 */
const MIN_SPARE_SIZE = 4 * 1024

/** A buffer frames are encoded into, and how many of its regions the transport has not finished writing. */
interface Slab {
  readonly buf: Buffer
  held: number
}
const NO_SLAB: Slab = { buf: Buffer.alloc(0), held: 0 }
/**
 * Written slabs of the smallest size, shared by every connection of the process (at most
 * MAX_SMALL_SLABS). A connection with one call in flight writes a few dozen bytes a turn and
 * retires its slab with them: it takes a slab here for its next turn and its write callback
 * gives the slab back, so it allocates nothing per call, and an idle connection still holds no
 * slab. Each is its own 1 KiB ArrayBuffer, so the few kept pin no share of Node's buffer pool.
 */
const smallSlabs: Slab[] = []
const MAX_SMALL_SLABS = 16
/**
 * Only slabs smaller than this are outgrown (#grow): past it a full slab is written at once, as
 * the large path always did. Copying the frames of a larger slab into another (and allocating it
 * when no spare fits) cost a connection sending 4 KiB values more than the extra write it saved.
 */
const GROW_BELOW = 16 * 1024
/** Pending output at which the batch is written at once instead of at the end of the turn. */
const FLUSH_NOW_BYTES = 1024 * 1024

/**
 * The write side of a frame connection, the hottest path of the library: encodes frames into
 * reused slabs and writes a turn's frames to the transport in one batch. The connection checks
 * that it is open before calling `frame()`/`encoded()` and reads backpressure from `onBackedUp`.
 *
 * Frames are encoded straight into a slab: no buffer per frame, and a turn's frames leave as
 * one buffer in one write (over TLS a write of several buffers is copied into one by Node,
 * so copying a value into the slab costs nothing a batch would not cost anyway). A region of
 * the slab, once handed to the transport, is never written again; the next frames go after it,
 * or into another slab. A slab whose regions have all been written (the transport's write
 * callbacks say so) is kept as a spare and used again, so a busy connection allocates
 * nothing to write: a few slabs take turns.
 */
export class FrameWriter {
  /**
   * Largest frame the peer accepts (its HELLO says; the v1 default otherwise). A bigger frame
   * would make the peer close the whole connection, so frame() refuses it for this call alone.
   */
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE
  #transport: Transport
  /** Called when a write returns false: the transport is backed up until it drains. */
  #onBackedUp: () => void
  /** False once the connection closes: written slabs are no longer kept as spares. */
  #open = true
  #slab: Slab = NO_SLAB
  /** Slabs of the current size that the transport is done with, at most MAX_SPARES. */
  #spares: Slab[] = []
  /** The slab of every region handed to the transport and not yet written, in write order. */
  #written: Slab[] = []
  #onWritten = (err?: Error | null) => this.#released(err)
  #writeFailed = false
  /**
   * Size of the slabs: twice what a turn writes, between 1 KiB and 64 KiB. It grows at once and
   * shrinks only after SHRINK_AFTER_TURNS smaller turns in a row or a turn after a second of
   * silence, so a busy connection keeps recycling slabs of one size while an idle one holds
   * one small slab and no spares (10,000 idle connections with 64 KiB each held 640 MiB). A
   * connection that falls silent gives its large slabs back at its next write: with keepalive
   * on, the ping or pong after one interval (30 s on the client, 60 s on the server) at the latest.
   */
  #slabHint = MIN_SLAB_SIZE
  #smallerTurns = 0
  #lastFlushAt = 0
  #slabStart = 0
  #slabEnd = 0
  /**
   * The first region or large value waiting for this turn's write, and its slab (undefined for a
   * large value). Most turns write one region: they need no arrays, so a turn allocates none.
   */
  #first: Buffer | undefined = undefined
  #firstSlab: Slab | undefined = undefined
  /** The regions and large values after #first, in order (created for a turn with more than one). */
  #pending: Buffer[] = []
  /** The slab of each entry of #pending (undefined for a large value). */
  #pendingSlabs: (Slab | undefined)[] = []
  #pendingBytes = 0
  #flushScheduled = false
  #flush = () => {
    this.#flushScheduled = false
    this.#flushBatch()
  }

  constructor(transport: Transport, onBackedUp: () => void) {
    this.#transport = transport
    this.#onBackedUp = onBackedUp
  }

  /** Queues one frame. Throws RESOURCE_EXHAUSTED, queuing nothing, for a frame larger than the peer takes. */
  frame(flags: number, id: FrameId, type: string, value: Uint8Array, prefix: Uint8Array | undefined): void {
    const prefixLength = prefix === undefined ? 0 : prefix.length
    const valueLength = prefixLength + value.byteLength
    if (HEADER_SIZE + valueLength + type.length * 3 > this.maxFrameSize) {
      const size = HEADER_SIZE + valueLength + Buffer.byteLength(type)
      if (size > this.maxFrameSize) {
        throw new RpcError(
          Code.RESOURCE_EXHAUSTED,
          `message of ${size} bytes is larger than the peer accepts (${this.maxFrameSize})`,
        )
      }
    }
    // The prefix (a metadata block) is part of the value on the wire, written in front of it.
    const typeLength = typeByteLength(type)
    const headerLength = HEADER_SIZE + typeLength + prefixLength
    const size = headerLength + value.byteLength
    if (size > SLAB_SIZE || (value.byteLength >= REFERENCE_MIN && !this.#roomFor(size))) {
      // Too large for a slab, or for any slab at hand: the value goes to the transport as it
      // is, after its header.
      this.#reserve(headerLength)
      const slab = this.#slab.buf
      this.#slabEnd += writeHeader(slab, this.#slabEnd, flags, id, type, typeLength, valueLength)
      if (prefix !== undefined) {
        slab.set(prefix, this.#slabEnd)
        this.#slabEnd += prefixLength
      }
      this.#closeRegion()
      this.#queue(value as Buffer, undefined)
    } else {
      this.#reserve(size)
      const slab = this.#slab.buf
      const at = this.#slabEnd + writeHeader(slab, this.#slabEnd, flags, id, type, typeLength, valueLength)
      if (prefix !== undefined) slab.set(prefix, at)
      slab.set(value, at + prefixLength)
      this.#slabEnd = at + prefixLength + value.byteLength
    }
    this.#added(size)
  }

  /** Queues bytes that are already an encoded frame. */
  encoded(frame: Uint8Array): void {
    this.#reserve(frame.length)
    this.#slab.buf.set(frame, this.#slabEnd)
    this.#slabEnd += frame.length
    this.#added(frame.length)
  }

  /** The connection is closing: writes what is queued; from here on no slab is kept for reuse. */
  close(): void {
    this.#open = false
    this.#flushBatch()
  }

  /** Drops what is queued and not yet handed to the transport. */
  discard(): void {
    this.#first = undefined
    this.#firstSlab = undefined
    this.#pending = []
    this.#pendingSlabs = []
    this.#pendingBytes = 0
  }

  /** The connection is closed: drops what is queued and the spares. */
  destroy(): void {
    this.#open = false
    this.#first = undefined
    this.#firstSlab = undefined
    this.#pending = []
    this.#pendingSlabs = []
    this.#spares = []
  }

  /**
   * Whether `size` bytes fit at the slab's end, or in a slab free now (the current one, all of
   * it written, or a spare), without writing this turn's output early or allocating a slab.
   */
  #roomFor(size: number): boolean {
    const slab = this.#slab
    if (this.#slabEnd + size <= slab.buf.length) return true
    if (this.#first !== undefined || this.#slabEnd > this.#slabStart) return false
    if (slab.held === 0 && slab.buf.length === this.#slabHint && size <= slab.buf.length) return true
    const spare = this.#spares[this.#spares.length - 1]
    return spare !== undefined && size <= spare.buf.length
  }

  /**
   * Makes room for `size` contiguous bytes at the slab's end. A small slab that fills up is
   * outgrown (#grow); when a full-size slab is full, what is queued is written now (one write
   * per slab) and frames go on in a spare or a new slab.
   */
  #reserve(size: number): void {
    if (this.#slabEnd + size <= this.#slab.buf.length) return
    if (this.#grow(size)) return
    if (this.#first !== undefined || this.#slabEnd > this.#slabStart) this.#flushBatch()
    const slab = this.#slab
    if (slab.held === 0 && slab.buf.length === this.#slabHint && size <= slab.buf.length) {
      // Everything written from it has left: start again at its beginning.
      this.#slabStart = 0
      this.#slabEnd = 0
      return
    }
    if (!this.#switchSlab(size)) this.#slab = newSlab(Math.max(this.#slabHint, size))
  }

  /**
   * This turn's frames outgrew a small slab (under GROW_BELOW): they move to a larger one (a
   * spare that fits, or a new slab) and the turn goes on there, so it still leaves in one write.
   * Writing the full small slab at once instead split a turn's frames into several writes; with
   * many calls in flight the peer reads each write on its own and answers each in a write of its
   * own, and the calls stay split into those trains for good: a client starting 64 calls at once
   * wrote them as 11 + 22 + 31 frames in 1, 4 and 16 KiB slabs, and both ends then made three
   * writes and three reads for every 64 calls. False (nothing changes) when the frames in the
   * slab and `size` would not fit in a full-size slab, no frame is in it, or it is not small.
   */
  #grow(size: number): boolean {
    const start = this.#slabStart
    const open = this.#slabEnd - start
    const old = this.#slab
    if (open === 0 || open + size > SLAB_SIZE || old.buf.length >= GROW_BELOW) return false
    const bytes = Math.max(this.#slabHint, slabSizeFor(open + size))
    this.#slabHint = bytes
    this.#smallerTurns = 0
    const spare = this.#spares.pop()
    const next = spare !== undefined && spare.buf.length >= open + size ? spare : newSlab(bytes)
    next.buf.set(new Uint8Array(old.buf.buffer, old.buf.byteOffset + start, open), 0)
    this.#slab = next
    this.#slabStart = 0
    this.#slabEnd = open
    if (old.held === 0) this.#recycle(old)
    return true
  }

  /**
   * Stops encoding into the current slab (it becomes a spare once the transport is done with it) and
   * goes on in a spare that holds `size` bytes, if there is one; false leaves no current slab.
   */
  #switchSlab(size: number): boolean {
    this.#retireSlab()
    const spare = this.#spares.pop()
    if (spare === undefined || size > spare.buf.length) return false
    this.#slab = spare
    return true
  }

  /** Adjusts the slab size to this turn's output (see #slabHint); drops spares of another size. */
  #sizeSlabs(turnBytes: number): void {
    const needed = slabSizeFor(turnBytes)
    if (needed === MIN_SLAB_SIZE && this.#slabHint === MIN_SLAB_SIZE) {
      // Small turns at the smallest size (one call in flight): nothing to change and no clock
      // read. Idleness is only judged at a larger size, where every turn, the one that grew the
      // size included, stamps the clock.
      this.#smallerTurns = 0
      return
    }
    const now = performance.now()
    const idle = now - this.#lastFlushAt > SHRINK_AFTER_IDLE_MS
    this.#lastFlushAt = now
    if (needed >= this.#slabHint) {
      this.#slabHint = needed
      this.#smallerTurns = 0
    } else if (idle || ++this.#smallerTurns >= SHRINK_AFTER_TURNS) {
      this.#slabHint = needed
      this.#smallerTurns = 0
    }
    if (this.#spares.length > 0 && this.#spares[0].buf.length !== this.#slabHint) this.#spares = []
  }

  /** Stops encoding into the current slab; it becomes a spare once the transport is done with it. */
  #retireSlab(): void {
    const slab = this.#slab
    this.#slab = NO_SLAB
    this.#slabStart = 0
    this.#slabEnd = 0
    if (slab.held === 0) this.#recycle(slab)
  }

  /** Keeps a slab nobody references any more as a spare, if it has the current size (the smallest go to the shared list). */
  #recycle(slab: Slab): void {
    if (!this.#open || this.#writeFailed) return
    const size = slab.buf.length
    if (size === MIN_SLAB_SIZE) {
      if (smallSlabs.length < MAX_SMALL_SLABS) smallSlabs.push(slab)
    } else if (size === this.#slabHint && size >= MIN_SPARE_SIZE && this.#spares.length < MAX_SPARES) {
      this.#spares.push(slab)
    }
  }

  /**
   * A write finished: the oldest region handed to the transport is no longer referenced
   * (transports call write callbacks in write order). After a failed write nothing is recycled any more.
   */
  #released(err: Error | null | undefined): void {
    if (err) {
      this.#writeFailed = true
      this.#spares = []
      return
    }
    const slab = this.#written.shift()
    if (slab !== undefined && --slab.held === 0 && slab !== this.#slab) this.#recycle(slab)
  }

  /** Moves the slab bytes written since the last region into the pending list. */
  #closeRegion(): void {
    if (this.#slabEnd === this.#slabStart) return
    this.#queue(this.#slab.buf.subarray(this.#slabStart, this.#slabEnd), this.#slab)
    this.#slab.held++
    this.#slabStart = this.#slabEnd
  }

  #queue(buf: Buffer, slab: Slab | undefined): void {
    if (this.#first === undefined) {
      this.#first = buf
      this.#firstSlab = slab
    } else {
      this.#pending.push(buf)
      this.#pendingSlabs.push(slab)
    }
  }

  #write(buf: Buffer, slab: Slab | undefined): boolean {
    if (slab === undefined) return this.#transport.write(buf)
    this.#written.push(slab)
    return this.#transport.write(buf, this.#onWritten)
  }

  #added(bytes: number): void {
    this.#pendingBytes += bytes
    // A big batch goes out now, so that transport.write() reports backpressure to the sender
    // before it queues more (a loop awaiting resolved promises never lets nextTick run).
    if (this.#pendingBytes >= FLUSH_NOW_BYTES) {
      this.#flushBatch()
      return
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      process.nextTick(this.#flush)
    }
  }

  #flushBatch(): void {
    this.#closeRegion()
    const first = this.#first
    if (first === undefined || this.#transport.state === 'closed') return
    const firstSlab = this.#firstSlab
    const batch = this.#pending
    const slabs = this.#pendingSlabs
    const turnBytes = this.#pendingBytes
    this.#first = undefined
    this.#firstSlab = undefined
    if (batch.length > 0) {
      this.#pending = []
      this.#pendingSlabs = []
    }
    this.#pendingBytes = 0
    let ok: boolean
    if (batch.length === 0) {
      ok = this.#write(first, firstSlab)
    } else {
      this.#transport.cork()
      ok = this.#write(first, firstSlab)
      for (let i = 0; i < batch.length; i++) ok = this.#write(batch[i], slabs[i])
      this.#transport.uncork()
    }
    // The bookkeeping for the next turn comes after the write: with one call in flight the
    // write is the reply the peer waits for, and the clock read of #sizeSlabs would delay it.
    this.#sizeSlabs(turnBytes)
    const slabSize = this.#slab.buf.length
    if (
      (slabSize - this.#slabEnd < MIN_SLAB_SIZE || slabSize !== this.#slabHint) &&
      // A transport that called back into us during the write may have queued frames here.
      this.#slabEnd === this.#slabStart
    ) {
      // Nearly full, or not the size the traffic needs now: the next frames go into a spare, or
      // into a new slab (a spare taken now leaves room for this one when its write is done).
      this.#switchSlab(0)
    }
    if (!ok) this.#onBackedUp()
  }
}

/** The slab size for `bytes` of output: twice as much, rounded up to a power of two, between MIN_SLAB_SIZE and SLAB_SIZE. */
export function slabSizeFor(bytes: number): number {
  if (bytes <= MIN_SLAB_SIZE / 2) return MIN_SLAB_SIZE
  if (bytes >= SLAB_SIZE / 2) return SLAB_SIZE
  // The next power of two from 2 × bytes, by counting leading zeros (no log2, no pow).
  return 1 << (32 - Math.clz32(2 * bytes - 1))
}

/** A slab of `size` bytes: one from the shared list for the smallest size, else a new one. */
function newSlab(size: number): Slab {
  if (size !== MIN_SLAB_SIZE) return { buf: Buffer.allocUnsafe(size), held: 0 }
  return smallSlabs.pop() ?? { buf: Buffer.allocUnsafeSlow(MIN_SLAB_SIZE), held: 0 }
}
