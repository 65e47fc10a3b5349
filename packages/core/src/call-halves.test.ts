import { Code, Flags, MESSAGE_OVERHEAD, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { callReceiver, callSender } from './call-halves'
import type { CallHost } from './call-host'
import { Extensions } from './extensions'

/** Extensions with flow control on and windows of `window` bytes both ways. */
const withFlow = (window: number) =>
  new Extensions(new Set(['flow']), undefined, undefined, window, window, window, undefined)

/** A call's connection that records what the halves ask of it. */
function fakeHost(overrides: Partial<CallHost> = {}) {
  const log: string[] = []
  const host: CallHost = {
    streamHighWaterMark: 100,
    maxBufferedBytes: 1000,
    writable: true,
    send: (flags, id, value) => {
      log.push(`send 0x${flags.toString(16)} #${id} ${Buffer.from(value).toString()}`)
      return true
    },
    whenWritable: () => Promise.resolve(),
    grant: (id, bytes) => log.push(`grant #${id} ${bytes}`),
    cancel: () => {},
    forget: () => {},
    pauseReading: () => log.push('pause'),
    resumeReading: () => log.push('resume'),
    ...overrides,
  }
  return { host, log }
}

describe('callSender', () => {
  it('writes frames of its call id through the host', async () => {
    const { host, log } = fakeHost()
    const sender = callSender(host, 7, withFlow(1000))
    await sender.send(Flags.STREAM, Buffer.from('hi'))
    expect(log).toEqual(['send 0x4 #7 hi'])
  })

  it("is bounded by the host's maxBufferedBytes", async () => {
    const { host } = fakeHost({ maxBufferedBytes: 100 })
    // No credit yet: the first message waits, the second would pass the bound.
    const sender = callSender(host, 7, withFlow(0))
    const first = sender.send(Flags.STREAM, Buffer.alloc(60))
    first.catch(() => {})
    expect(sender.bufferedAmount).toBe(60 + MESSAGE_OVERHEAD)
    const second = await sender.send(Flags.STREAM, Buffer.alloc(60)).then(
      () => 'sent',
      (err: RpcError) => err.code,
    )
    expect(second).toBe(Code.RESOURCE_EXHAUSTED)
    sender.fail(new RpcError(Code.CANCELLED, 'done'))
  })
})

describe('callReceiver', () => {
  it('grants credit for its call id as the application reads', async () => {
    const { host, log } = fakeHost()
    const receiver = callReceiver(host, 9, withFlow(4 * (MESSAGE_OVERHEAD + 90)))
    for (let i = 0; i < 4; i++) receiver.deliver(Buffer.alloc(90))
    expect(log).toEqual([])
    await receiver.queue.next()
    expect(log).toEqual([`grant #9 ${MESSAGE_OVERHEAD + 90}`])
  })

  it("pauses reading past the host's high-water mark when the peer has no flow control", () => {
    const { host, log } = fakeHost({ streamHighWaterMark: 100 })
    const noFlow = new Extensions(new Set(), undefined, undefined, 0, 0, 0, undefined)
    const receiver = callReceiver(host, 9, noFlow)
    receiver.deliver(Buffer.alloc(150))
    expect(log).toEqual(['pause'])
    receiver.queue.tryNext()
    expect(log).toEqual(['pause', 'resume'])
  })
})
