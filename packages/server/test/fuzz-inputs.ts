import {
  ControlKind,
  encodeControl,
  encodeFrame,
  encodeMetadata,
  Flags,
  FrameDecoder,
  RpcError,
} from '@srpc/protocol'

/** A small, fast, seeded PRNG (mulberry32), so every fuzz run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Frames a real peer would send: the seeds that mutations start from. */
export function validFrames(): Buffer[] {
  return [
    encodeFrame(Flags.REQUEST, 1, '/echo', Buffer.from('hello')),
    encodeFrame(Flags.REQUEST | Flags.STREAM, 2, '/count', Buffer.from('3')),
    encodeFrame(Flags.STREAM, 3, '/chat', Buffer.alloc(0)),
    encodeFrame(Flags.STREAM, 3, '', Buffer.from('message')),
    encodeFrame(Flags.STREAM | Flags.STREAM_END, 3, '', Buffer.alloc(0)),
    // A server's stream chunks: from a client they break the protocol, and the server must say so.
    encodeFrame(Flags.RESPONSE | Flags.STREAM, 2, '', Buffer.from('chunk')),
    encodeFrame(Flags.RESPONSE | Flags.STREAM | Flags.STREAM_END, 2, '', Buffer.alloc(0)),
    encodeFrame(Flags.ERROR, 3, '', Buffer.from('{"code":"CANCELLED","message":"x"}')),
    encodeFrame(
      Flags.REQUEST | Flags.METADATA,
      4,
      '/echo',
      Buffer.concat([encodeMetadata({ 'srpc-timeout': '1000', token: 'abc' }), Buffer.from('p')]),
    ),
    encodeControl(0, { kind: ControlKind.HELLO, capabilities: { version: 1, features: ['cancel', 'flow'] } }),
    encodeControl(0, { kind: ControlKind.HELLO_ACK }),
    encodeControl(0, { kind: ControlKind.PING, payload: Buffer.alloc(8, 7) }),
    encodeControl(1, { kind: ControlKind.CANCEL, code: 'CANCELLED' }),
    encodeControl(3, { kind: ControlKind.WINDOW_UPDATE, bytes: 65536 }),
    encodeFrame(Flags.REQUEST, 0xffffffffffffffffn, '/echo', Buffer.alloc(300, 1)),
  ].map((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
}

export type InputKind = 'random' | 'mutated' | 'truncated' | 'spliced'

/** One fuzz input: random bytes, a mutated valid frame, a truncated one, or two spliced together. */
export function nextInput(random: () => number, seeds: Buffer[]): { kind: InputKind; bytes: Buffer } {
  const pick = random()
  const seed = seeds[Math.floor(random() * seeds.length)]
  if (pick < 0.15) {
    const bytes = Buffer.alloc(Math.floor(random() * 64))
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256)
    // Often start with a plausible version byte so the header gets parsed further.
    if (bytes.length > 0 && random() < 0.7) bytes[0] = 1
    return { kind: 'random', bytes }
  }
  if (pick < 0.3) return { kind: 'truncated', bytes: seed.subarray(0, Math.floor(random() * seed.length)) }
  if (pick < 0.4) {
    const other = seeds[Math.floor(random() * seeds.length)]
    const cut = Math.floor(random() * seed.length)
    return {
      kind: 'spliced',
      bytes: Buffer.concat([seed.subarray(0, cut), other.subarray(cut % other.length)]),
    }
  }
  const bytes = Buffer.from(seed)
  const edits = 1 + Math.floor(random() * 4)
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * bytes.length)
    const how = random()
    if (how < 0.5) bytes[at] ^= 1 << Math.floor(random() * 8)
    else if (how < 0.8) bytes[at] = Math.floor(random() * 256)
    else bytes[at] = [0, 1, 0x7f, 0x80, 0xff][Math.floor(random() * 5)]
  }
  return { kind: 'mutated', bytes }
}

/**
 * Runs one input through a fresh decoder, split at a random point, then end-of-input.
 * Returns the outcome's signature ('frames:N' or the error message with numbers blanked);
 * throws if the decoder threw anything but RpcError(PROTOCOL_ERROR) or buffered past its bound.
 */
export function decodeOnce(bytes: Buffer, split: number, maxFrameSize: number): string {
  const decoder = new FrameDecoder({ maxFrameSize, maxTypeLength: 256 })
  let frames = 0
  try {
    decoder.push(bytes.subarray(0, split), () => frames++)
    if (decoder.bufferedBytes > maxFrameSize)
      throw new Error(`decoder buffered ${decoder.bufferedBytes} bytes`)
    decoder.push(bytes.subarray(split), () => frames++)
    if (decoder.bufferedBytes > maxFrameSize)
      throw new Error(`decoder buffered ${decoder.bufferedBytes} bytes`)
    decoder.end()
    return `frames:${frames}`
  } catch (err) {
    if (!(err instanceof RpcError) || err.code !== 'PROTOCOL_ERROR') {
      throw new Error(`decoder threw ${String(err)} for input ${bytes.toString('hex')} split at ${split}`)
    }
    return err.message.replace(/\d+/g, 'N')
  }
}
