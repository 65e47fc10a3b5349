import { performance } from 'node:perf_hooks'
import { Flags } from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FrameWriter, slabSizeFor } from './frame-writer'
import type { Transport } from './transport'

afterEach(() => {
  vi.restoreAllMocks()
})

/** A transport that hands each write's bytes to `record`; its write callbacks come in a later tick. */
function fakeTransport(record: (chunk: Uint8Array) => void): Transport {
  return {
    state: 'open',
    write(chunk: Uint8Array, written?: (err?: Error | null) => void) {
      record(chunk)
      if (written) process.nextTick(written)
      return true
    },
    cork() {},
    uncork() {},
  } as unknown as Transport
}

/** A transport that records what was written and how often the clock had been read by then. */
function recordingTransport(clock: { mock: { calls: unknown[] } }) {
  const writes: { bytes: number; clockReads: number }[] = []
  const transport = fakeTransport((chunk) =>
    writes.push({ bytes: chunk.length, clockReads: clock.mock.calls.length }),
  )
  return { transport, writes }
}

describe('FrameWriter', () => {
  it('writes a turn before its own bookkeeping, and reads no clock while turns stay small', async () => {
    const clock = vi.spyOn(performance, 'now')
    const { transport, writes } = recordingTransport(clock)
    const writer = new FrameWriter(transport, () => {})
    for (let turn = 0; turn < 3; turn++) {
      writer.frame(Flags.REQUEST, turn + 1, '/echo', Buffer.alloc(64, turn), undefined)
      await new Promise((resolve) => setImmediate(resolve))
      expect(writes).toHaveLength(turn + 1)
      expect(writes[turn]).toEqual({ bytes: 16 + 5 + 64, clockReads: 0 })
    }
    // One call in flight keeps the smallest slab: nothing to size, so no clock read at all.
    expect(clock.mock.calls).toHaveLength(0)
    // A turn that needs a larger slab: written first, then the sizing reads the clock once.
    for (let i = 0; i < 20; i++) writer.frame(Flags.REQUEST, 10 + i, '/echo', Buffer.alloc(64, i), undefined)
    await new Promise((resolve) => setImmediate(resolve))
    expect(writes.slice(3).every((w) => w.clockReads === 0)).toBe(true)
    expect(clock.mock.calls).toHaveLength(1)
    // At that size every turn reads it, small ones too (they count towards shrinking).
    writer.frame(Flags.REQUEST, 40, '/echo', Buffer.alloc(64, 40), undefined)
    await new Promise((resolve) => setImmediate(resolve))
    expect(writes.at(-1)).toEqual({ bytes: 16 + 5 + 64, clockReads: 1 })
    expect(clock.mock.calls).toHaveLength(2)
  })

  it('sizes slabs at twice a turn, rounded up to a power of two, between 1 KiB and 64 KiB', () => {
    for (let bytes = 0; bytes <= 100_000; bytes++) {
      const expected = Math.min(64 * 1024, Math.max(1024, 2 ** Math.ceil(Math.log2(2 * bytes))))
      if (slabSizeFor(bytes) !== expected) expect(slabSizeFor(bytes), `for ${bytes} bytes`).toBe(expected)
    }
    expect([0, 512, 513, 1024, 1025, 16_384, 16_385, 32_767, 32_768].map(slabSizeFor)).toEqual([
      1024, 1024, 2048, 2048, 4096, 32_768, 65_536, 65_536, 65_536,
    ])
  })
})

/** A transport that keeps every write's bytes. */
function keepingTransport() {
  const writes: Buffer[] = []
  const transport = fakeTransport((chunk) => writes.push(Buffer.from(chunk)))
  return { transport, writes }
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

describe('FrameWriter turns larger than its slab', () => {
  it('writes a turn that outgrows a small slab in one write, the frames intact and in order', async () => {
    const { transport, writes } = keepingTransport()
    const writer = new FrameWriter(transport, () => {})
    const frames: Buffer[] = []
    // From a fresh writer (its first slab is 1 KiB): 64 requests as a client starting 64 calls
    // at once writes them, then more turns in the slab they grew.
    for (const [count, size] of [
      [64, 64],
      [64, 64],
      [3, 100],
    ]) {
      const before = writes.length
      for (let i = 0; i < count; i++) {
        const value = Buffer.alloc(size, (frames.length * 7) & 0xff)
        const id = frames.length + 1
        writer.frame(Flags.REQUEST, id, '/bench/echo', value, undefined)
        frames.push(Buffer.concat([header(id, '/bench/echo', size), value]))
      }
      await nextTurn()
      expect(writes.length - before).toBe(1)
    }
    expect(Buffer.concat(writes).equals(Buffer.concat(frames))).toBe(true)
  })

  it('writes a first turn of 12 KiB in one write', async () => {
    const { transport, writes } = keepingTransport()
    const frames = queueReplies(new FrameWriter(transport, () => {}), 6, 2000)
    await nextTurn()
    expect(writes).toHaveLength(1)
    expect(writes[0].equals(Buffer.concat(frames))).toBe(true)
  })

  it('still writes a turn larger than a full-size slab as it fills slabs', async () => {
    const { transport, writes } = keepingTransport()
    const frames = queueReplies(new FrameWriter(transport, () => {}), 40, 4096)
    await nextTurn()
    // 160 KiB: one write per full 64 KiB slab, the rest at the end of the turn.
    expect(writes.length).toBeGreaterThanOrEqual(3)
    expect(Buffer.concat(writes).equals(Buffer.concat(frames))).toBe(true)
  })
})

/** A v1 frame header and its type, as the wire carries them. */
/** Queues `count` replies of `size` bytes (ids 1…count, each value filled with its index); returns their expected bytes. */
function queueReplies(writer: FrameWriter, count: number, size: number): Buffer[] {
  const frames: Buffer[] = []
  for (let i = 0; i < count; i++) {
    const value = Buffer.alloc(size, i)
    writer.frame(Flags.RESPONSE, i + 1, '', value, undefined)
    frames.push(Buffer.concat([header(i + 1, '', size), value]))
  }
  return frames
}

function header(id: number, type: string, valueLength: number): Buffer {
  const out = Buffer.alloc(16 + type.length)
  out[0] = 1
  out[1] = type === '' ? Flags.RESPONSE : Flags.REQUEST
  out.writeUInt32BE(Math.floor(id / 2 ** 32), 2)
  out.writeUInt32BE(id % 2 ** 32, 6)
  out.writeUInt16BE(type.length, 10)
  out.writeUInt32BE(valueLength, 12)
  out.write(type, 16, 'latin1')
  return out
}
