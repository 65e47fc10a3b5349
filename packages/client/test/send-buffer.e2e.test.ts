import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Code, type Context, RpcError } from '@srpc/server'
import { afterEach, describe, expect, it } from 'vitest'
import { callOf } from '../src/client-session'
import type { ClientSession } from '../src/index'
import { Harness, sleep } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

const KIB = 1024
const MIB = 1024 * KIB
/** The default maxBufferedBytes, on both ends. */
const BOUND = MIB
/** What one message counts against the bound beyond its bytes (MESSAGE_OVERHEAD). */
const OVERHEAD = 64
/** A small window, so that the window is not what holds most of the bytes back. */
const WINDOW = 64 * KIB
/**
 * Memory the rest of the path may hold besides the sender's queue: one batch the frame
 * connection handed to the socket (up to 1 MiB), the receiver's queue (the window, or its
 * 1 MiB high-water mark without flow control) and TLS buffers. Without the bound, the same
 * floods grew the process by 58–124 MiB.
 */
const SLACK = 6 * MIB
/**
 * Bytes of sends that may go or queue rather than be refused: the bound, the window, and what
 * the socket took before it reported backpressure (a batch of up to 1 MiB). Refusing by count
 * (4,096 sends) let 4 MiB of 1 KiB sends through, and 64 MiB of 64 KiB ones.
 */
const WENT_OR_QUEUED = BOUND + WINDOW + 2 * MIB

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Heap and buffers the process holds, after a full collection. */
function retained(): number {
  gc()
  gc()
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}

interface Flood {
  resolved: number
  refused: number
  /** Codes (or texts) of failures other than RESOURCE_EXHAUSTED. */
  other: string[]
  /** Highest bufferedAmount seen after a send. */
  peak: number
  /** Resolves once every send resolved or failed. */
  done: Promise<void>
}

/** Fire-and-forget: `count` numbered messages of `size` bytes, none awaited. */
function flood(
  send: (data: Buffer) => Promise<void>,
  buffered: () => number,
  count: number,
  size: number,
): Flood {
  let finish!: () => void
  const result: Flood = {
    resolved: 0,
    refused: 0,
    other: [],
    peak: 0,
    done: new Promise<void>((resolve) => {
      finish = resolve
    }),
  }
  let settled = 0
  const settle = () => {
    if (++settled === count) finish()
  }
  for (let i = 0; i < count; i++) {
    const message = Buffer.alloc(size)
    message.writeUInt32BE(i)
    send(message).then(
      () => {
        result.resolved++
        settle()
      },
      (err: unknown) => {
        if (RpcError.is(err, Code.RESOURCE_EXHAUSTED)) result.refused++
        else result.other.push(RpcError.is(err) ? err.code : String(err))
        settle()
      },
    )
    result.peak = Math.max(result.peak, buffered())
  }
  return result
}

/** Checks that `numbers` increase strictly: every message that went, went in order. */
function expectIncreasing(numbers: number[]): void {
  const misplaced = numbers.findIndex((n, i) => i > 0 && n <= numbers[i - 1])
  expect(misplaced).toBe(-1)
}

/** Whether flow control is on for this session (the test must know which case it exercises). */
function flowOf(session: ClientSession): boolean {
  return (callOf(session) as unknown as { ext: { flow: boolean } }).ext.flow
}

const SIZES = [
  { count: 50_000, size: KIB, label: '50,000 × 1 KiB' },
  { count: 1_000, size: 64 * KIB, label: '1,000 × 64 KiB' },
]
const CASES = [
  { negotiated: true, label: `with flow control (${WINDOW / KIB} KiB window)` },
  { negotiated: false, label: 'on a session opened before the negotiation finished (no flow control)' },
]

describe.each(CASES)('un-awaited sends to a peer that never reads, $label', ({ negotiated }) => {
  it.each(SIZES)(
    'server → client, $label: bounded in bytes, the rest refused, order kept',
    async ({ count, size }) => {
      let serverFlood!: (flood: Flood) => void
      const flooded = new Promise<Flood>((resolve) => {
        serverFlood = resolve
      })
      const { address } = await h.server((s) => {
        s.mux.handle('/x', () => 'x')
        s.mux.handle('/push', async (ctx: Context) => {
          const f = flood(
            (m) => ctx.sendMessage(m),
            () => ctx.bufferedAmount,
            count,
            size,
          )
          serverFlood(f)
          await f.done
          // Once the buffer drained, sends work again.
          await ctx.sendMessage('after')
        })
      })
      const pool = await h.pool(address, { size: 1, initialWindow: WINDOW, maxWindow: WINDOW })
      if (negotiated) await pool.call('/x')
      const before = retained()
      const session = await pool.createBidirectionalSession('/push')
      expect(flowOf(session)).toBe(negotiated)
      const f = await flooded
      await sleep(200) // the client reads nothing: whatever could leave has left
      const growth = retained() - before

      expect(f.other).toEqual([])
      expect(f.peak).toBeLessThanOrEqual(BOUND + size + OVERHEAD)
      expect(f.refused).toBeGreaterThanOrEqual(count - WENT_OR_QUEUED / size)
      expect(growth).toBeLessThan(BOUND + SLACK)

      // The client starts reading: exactly the sends that were not refused arrive, in order.
      const numbers: number[] = []
      let last = ''
      for await (const m of session) {
        if (m.length === size) numbers.push(m.readUInt32BE(0))
        else last = m.toString()
      }
      await f.done
      expect(f.resolved).toBe(count - f.refused)
      expect(numbers).toHaveLength(f.resolved)
      expectIncreasing(numbers)
      expect(last).toBe('after')
      await session.close()
    },
  )

  it.each(SIZES)(
    'client → server handler that never reads, $label: bounded in bytes, the rest refused, order kept',
    async ({ count, size }) => {
      let release!: () => void
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      const numbers: number[] = []
      let last = ''
      const { address } = await h.server(
        (s) => {
          s.mux.handle('/x', () => 'x')
          s.mux.handle('/sink', async (ctx: Context) => {
            await released // never calls receiveMessage until the test says so
            for await (const m of ctx.messages()) {
              if (m.length === size) numbers.push(m.readUInt32BE(0))
              else last = m.toString()
            }
            return 'done'
          })
        },
        { initialWindow: WINDOW, maxWindow: WINDOW },
      )
      const pool = await h.pool(address, { size: 1 })
      if (negotiated) await pool.call('/x')
      const before = retained()
      const session = await pool.createBidirectionalSession('/sink')
      expect(flowOf(session)).toBe(negotiated)
      const f = flood(
        (m) => session.send(m),
        () => session.bufferedAmount,
        count,
        size,
      )
      await sleep(200) // the server reads nothing: whatever could leave has left
      const growth = retained() - before

      expect(f.other).toEqual([])
      expect(f.peak).toBeLessThanOrEqual(BOUND + size + OVERHEAD)
      expect(session.bufferedAmount).toBeLessThanOrEqual(BOUND + size + OVERHEAD)
      expect(f.refused).toBeGreaterThanOrEqual(count - WENT_OR_QUEUED / size)
      expect(growth).toBeLessThan(BOUND + SLACK)

      // The handler starts reading: exactly the sends that were not refused arrive, in order.
      release()
      await f.done
      expect(session.bufferedAmount).toBe(0)
      expect(f.resolved).toBe(count - f.refused)
      await session.send('after') // the buffer drained: sends work again
      await session.close()
      expect(numbers).toHaveLength(f.resolved)
      expectIncreasing(numbers)
      expect(last).toBe('after')
    },
  )
})

describe('a server stream written without awaiting to a client that reads nothing yet', () => {
  it('refuses chunks past the bound, never the last one, and delivers the rest in order', async () => {
    let serverFlood: Flood | undefined
    let last = 'not sent'
    const { address } = await h.server((s) => {
      s.mux.handle('/x', () => 'x')
      s.mux.handle('/chunks', async (ctx: Context) => {
        const stream = ctx.stream()
        serverFlood = flood(
          (m) => stream.writeChunk(m),
          () => ctx.bufferedAmount,
          5000,
          KIB,
        )
        // The buffer is full now, but the end of the stream still goes (after the rest).
        last = await stream.writeChunk('end', true).then(
          () => 'resolved',
          (err: unknown) => (RpcError.is(err) ? err.code : String(err)),
        )
      })
    })
    const pool = await h.pool(address, { size: 1, initialWindow: WINDOW, maxWindow: WINDOW })
    await pool.call('/x')
    const chunks = pool.callStream('/chunks', '', { timeout: 10_000 })[Symbol.asyncIterator]()
    const first = await chunks.next()
    await sleep(200)
    const f = serverFlood!
    expect(f.other).toEqual([])
    expect(f.peak).toBeGreaterThan(BOUND - KIB - OVERHEAD)
    expect(f.peak).toBeLessThanOrEqual(BOUND)
    expect(f.refused).toBeGreaterThanOrEqual(5000 - WENT_OR_QUEUED / KIB)

    const numbers = [(first.value as Buffer).readUInt32BE(0)]
    let end = ''
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      if (next.value.length === KIB) numbers.push(next.value.readUInt32BE(0))
      else end = next.value.toString()
    }
    await f.done
    expect(numbers).toHaveLength(f.resolved)
    expectIncreasing(numbers)
    expect(end).toBe('end')
    expect(last).toBe('resolved')
  })
})

describe('maxBufferedBytes', () => {
  it('bounds sends on both ends as configured, and is validated like every size option', async () => {
    const bound = 32 * KIB
    let serverFlood: Flood | undefined
    const { address } = await h.server(
      (s) => {
        s.mux.handle('/x', () => 'x')
        // Floods the client and never reads what the client sends.
        s.mux.handle('/both', async (ctx: Context) => {
          serverFlood = flood(
            (m) => ctx.sendMessage(m),
            () => ctx.bufferedAmount,
            2000,
            KIB,
          )
          await serverFlood.done
        })
      },
      { maxBufferedBytes: bound, initialWindow: WINDOW, maxWindow: WINDOW },
    )
    const pool = await h.pool(address, {
      size: 1,
      maxBufferedBytes: bound,
      initialWindow: WINDOW,
      maxWindow: WINDOW,
    })
    await pool.call('/x')
    const session = await pool.createBidirectionalSession('/both')
    const clientFlood = flood(
      (m) => session.send(m),
      () => session.bufferedAmount,
      2000,
      KIB,
    )
    await sleep(100)
    for (const f of [serverFlood!, clientFlood]) {
      expect(f.other).toEqual([])
      expect(f.peak).toBeGreaterThan(bound - KIB - OVERHEAD)
      expect(f.peak).toBeLessThanOrEqual(bound)
      expect(f.refused).toBeGreaterThan(2000 - (bound + 2 * WINDOW + 16 * MIB) / KIB)
    }
    session.cancel(new RpcError(Code.CANCELLED, 'done'))

    await expect(h.pool(address, { maxBufferedBytes: 0 })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      message: expect.stringContaining('maxBufferedBytes'),
    })
    await expect(h.server(() => {}, { maxBufferedBytes: 1.5 })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
      message: expect.stringContaining('maxBufferedBytes'),
    })
  })
})
