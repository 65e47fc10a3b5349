import { performance } from 'node:perf_hooks'
import { Flags } from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FrameWriter } from './frame-writer'
import type { Transport } from './transport'

afterEach(() => {
  vi.restoreAllMocks()
})

/** A transport that records what was written and how often the clock had been read by then. */
function recordingTransport(clock: { mock: { calls: unknown[] } }) {
  const writes: { bytes: number; clockReads: number }[] = []
  const transport = {
    state: 'open',
    write(chunk: Uint8Array, written?: (err?: Error | null) => void) {
      writes.push({ bytes: chunk.length, clockReads: clock.mock.calls.length })
      if (written) process.nextTick(written)
      return true
    },
    cork() {},
    uncork() {},
  } as unknown as Transport
  return { transport, writes }
}

describe('FrameWriter', () => {
  it('writes a turn before its own bookkeeping: no clock read delays the write the peer waits for', async () => {
    const clock = vi.spyOn(performance, 'now')
    const { transport, writes } = recordingTransport(clock)
    const writer = new FrameWriter(transport, () => {})
    for (let turn = 0; turn < 3; turn++) {
      const before = clock.mock.calls.length
      writer.frame(Flags.REQUEST, turn + 1, '/echo', Buffer.alloc(64, turn), undefined)
      await new Promise((resolve) => setImmediate(resolve))
      expect(writes).toHaveLength(turn + 1)
      expect(writes[turn]).toEqual({ bytes: 16 + 5 + 64, clockReads: before })
      // The slab sizing reads it once the write is out.
      expect(clock.mock.calls.length).toBe(before + 1)
    }
  })
})
