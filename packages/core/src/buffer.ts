import { type Alloc, payloadBytesWith, type Frame as WireFrame } from '@srpc/protocol'

/**
 * @srpc/protocol speaks Uint8Array so that a browser can load it; the Node run time hands
 * Buffers to users (`ctx.payload`, what `pool.call` resolves). These helpers are the one place
 * where the two meet, and none of them copies.
 */

/** A decoded frame whose value is a Buffer: FrameConnection's decoder reads Buffers and allocates them. */
export type Frame = WireFrame<Buffer>

/** The allocator FrameConnection gives its decoder: values that span reads are Buffers too. */
export const allocBuffer: Alloc<Buffer> = (size) => Buffer.allocUnsafe(size)

/** `bytes` as a Buffer over the same memory (the Buffer itself when it is one). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

const EMPTY = Buffer.alloc(0)

/**
 * protocol's payload check (string, Uint8Array or undefined, else INVALID_ARGUMENT naming `what`)
 * producing a Buffer: strings through Buffer.from, several times faster than TextEncoder on Node.
 */
export const payloadBytes: (value: unknown, what: string) => Buffer = payloadBytesWith<Buffer>({
  fromString: (text) => Buffer.from(text, 'utf8'),
  fromBytes: asBuffer,
  empty: EMPTY,
})

/** Same as `payloadBytes(data, 'data')`. */
export function toBuffer(data: Uint8Array | string): Buffer {
  return payloadBytes(data, 'data')
}
