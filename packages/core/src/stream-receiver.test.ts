import { Code, MESSAGE_OVERHEAD, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { Extensions } from './extensions'
import { StreamReceiver } from './stream-receiver'

/** Extensions with flow control on and a receive window of `window` bytes. */
const withFlow = (window: number) =>
  new Extensions(new Set(['flow']), undefined, undefined, window, window, window, undefined)

function harness(ext: Extensions, highWaterMark = 1 << 20) {
  const events: string[] = []
  const grants: number[] = []
  const receiver = new StreamReceiver(ext, {
    highWaterMark,
    pauseReading: () => events.push('pause'),
    resumeReading: () => events.push('resume'),
    grant: (bytes) => grants.push(bytes),
  })
  return { receiver, events, grants }
}

/** A message whose credit cost is exactly `cost`. */
const costing = (cost: number) => Buffer.alloc(cost - MESSAGE_OVERHEAD, 'm')

describe('StreamReceiver with flow control', () => {
  it('grants credit back when the application consumes, not when messages arrive', async () => {
    const { receiver, grants } = harness(withFlow(1000))
    for (let i = 0; i < 4; i++) receiver.deliver(costing(250))
    expect(grants).toEqual([])
    await receiver.queue.next()
    expect(grants).toEqual([250])
    receiver.queue.tryNext()
    expect(grants).toEqual([250, 250])
  })

  it('batches grants until a quarter of the window is returnable', () => {
    const { receiver, grants } = harness(withFlow(1000))
    for (let i = 0; i < 10; i++) receiver.deliver(costing(100))
    for (let i = 0; i < 2; i++) receiver.queue.tryNext()
    expect(grants).toEqual([])
    receiver.queue.tryNext()
    expect(grants).toEqual([300])
  })

  it('grants for a message handed straight to a waiting reader', async () => {
    const { receiver, grants } = harness(withFlow(400))
    const read = receiver.queue.next()
    receiver.deliver(costing(100))
    expect((await read)?.length).toBe(100 - MESSAGE_OVERHEAD)
    expect(grants).toEqual([100])
  })

  it('throws PROTOCOL_ERROR for a message the sender had no credit for', () => {
    const { receiver } = harness(withFlow(1000))
    receiver.deliver(costing(600))
    receiver.deliver(costing(600)) // began inside the window: the one allowed overshoot
    let thrown: unknown
    try {
      receiver.deliver(Buffer.alloc(0))
    } catch (err) {
      thrown = err
    }
    expect(RpcError.is(thrown, Code.PROTOCOL_ERROR)).toBe(true)
    expect(receiver.queue.length).toBe(2)
  })

  it('accepts more once the credit it granted has been used', () => {
    const { receiver, grants } = harness(withFlow(1000))
    for (let i = 0; i < 10; i++) receiver.deliver(costing(100))
    for (let i = 0; i < 10; i++) receiver.queue.tryNext()
    // Three batches of 300; the last 100 waits for the next batch.
    expect(grants).toEqual([300, 300, 300])
    for (let i = 0; i < 9; i++) receiver.deliver(costing(100)) // 1900 = window + granted
    expect(() => receiver.deliver(costing(100))).toThrow(RpcError)
  })

  it('sends no grant for messages read after the stream ended', () => {
    const { receiver, grants } = harness(withFlow(400))
    receiver.deliver(costing(200))
    receiver.deliver(costing(200))
    receiver.queue.end()
    receiver.queue.tryNext()
    receiver.queue.tryNext()
    expect(grants).toEqual([])
  })
})

describe('StreamReceiver with a plain v1 peer', () => {
  it('pauses reading past the high-water mark and resumes at half of it, without grants', () => {
    const { receiver, events, grants } = harness(Extensions.NONE, 1000)
    for (let i = 0; i < 3; i++) receiver.deliver(Buffer.alloc(400))
    expect(events).toEqual(['pause'])
    receiver.queue.tryNext() // 800 queued: still above half the mark
    expect(events).toEqual(['pause'])
    receiver.queue.tryNext() // 400 <= 500
    expect(events).toEqual(['pause', 'resume'])
    expect(grants).toEqual([])
  })

  it('never enforces a window: a v1 peer may send any amount', () => {
    const { receiver } = harness(Extensions.NONE)
    for (let i = 0; i < 100; i++) receiver.deliver(Buffer.alloc(64 * 1024))
    expect(receiver.queue.length).toBe(100)
  })
})
