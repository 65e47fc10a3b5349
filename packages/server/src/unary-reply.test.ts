import { ALL_FEATURES, Extensions, type PeerInfo, resolveCompressionOptions } from '@srpc/core'
import { Code, EXTENSION_VERSION, Flags, type FrameId, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import type { CallHost } from './call-host'
import type { Context } from './context'
import type { Handler } from './mux'
import { ServerCall } from './server-call'

const MIB = 1024 * 1024

/** Extensions as a connection with `compression: true` on both ends agrees them. */
function compressing(): Extensions {
  const settings = {
    features: ALL_FEATURES,
    compression: resolveCompressionOptions(true),
    initialWindow: 65_536,
    maxFrameSize: 32 * MIB,
  }
  return Extensions.negotiate(settings, {
    version: EXTENSION_VERSION,
    features: [...ALL_FEATURES],
    codecs: ['deflate'],
    initialWindow: 65_536,
    maxFrameSize: 32 * MIB,
  })
}

/** A connection that records the frames its call sends. */
class RecordingHost implements CallHost {
  readonly frames: { flags: number; bytes: number }[] = []
  readonly failures: unknown[] = []
  finished = 0
  readonly streamHighWaterMark = 16
  readonly maxBufferedBytes = MIB
  readonly writable = true
  readonly connectionId = 1
  readonly shutdownReason = undefined
  readonly peer: PeerInfo = {
    transport: 'memory',
    address: undefined,
    port: undefined,
    authorized: false,
    certificateSubject: undefined,
  }
  send(flags: number, _id: FrameId, value: Uint8Array): boolean {
    this.frames.push({ flags, bytes: value.length })
    return true
  }
  whenWritable(): Promise<void> {
    return Promise.resolve()
  }
  grant(): void {}
  cancel(): void {}
  forget(): void {}
  pauseReading(): void {}
  resumeReading(): void {}
  callFinished(): void {
    this.finished++
  }
  handlerFailed(_call: ServerCall, error: unknown): void {
    this.failures.push(error)
  }
}

/** JSON-like text: compresses well, and is large enough to deflate on zlib's thread pool. */
function json(size: number): Buffer {
  const items: string[] = []
  let length = 0
  for (let i = 0; length < size; i++) {
    const item = JSON.stringify({ id: (i * 7919) % 100000, name: `item-${i % 97}`, ok: i % 3 === 0 })
    items.push(item)
    length += item.length + 1
  }
  return Buffer.from(items.join(',')).subarray(0, size)
}

const big = json(4 * MIB)

/** A request call running `handler` on a recording host; `finished` resolves when the call is done. */
function start(handler: Handler): { call: ServerCall; host: RecordingHost; finished: Promise<void> } {
  const host = new RecordingHost()
  const call = new ServerCall(
    host,
    1,
    '/r',
    'request',
    Buffer.alloc(0),
    {},
    undefined,
    handler,
    compressing(),
  )
  const finished = new Promise<void>((resolve) => {
    call.onFinished = resolve
  })
  call.start(() => {})
  return { call, host, finished }
}

async function outcome(promise: Promise<unknown> | undefined): Promise<string> {
  try {
    await promise
    return 'sent'
  } catch (err) {
    return err instanceof RpcError ? err.code : String(err)
  }
}

describe('a large reply deflates off the event loop', () => {
  it('is written later, and the call finishes only once it is', async () => {
    const { call, host, finished } = start(() => big)
    // The handler returned its value: the reply deflates on zlib's pool, nothing is written yet.
    expect(host.frames).toEqual([])
    expect(call.answered).toBe(true)
    expect(host.finished).toBe(0)
    await finished
    expect(host.frames).toHaveLength(1)
    expect(host.frames[0]!.flags).toBe(Flags.RESPONSE | Flags.COMPRESSED)
    expect(host.frames[0]!.bytes).toBeLessThan(big.length / 2)
    expect(call.replyValue).toBe(big)
    expect(call.messagesSent).toBe(1)
    expect(host.finished).toBe(1)
  })

  it('a small reply is still written at once', () => {
    const small = json(4096)
    const { host } = start((ctx: Context) => ctx.reply(small))
    expect(host.frames).toEqual([expect.objectContaining({ flags: Flags.RESPONSE | Flags.COMPRESSED })])
  })

  it('a call cancelled meanwhile sends nothing, and reply() rejects with the cancel', async () => {
    let reply: Promise<void> | undefined
    const { call, host, finished } = start((ctx: Context) => {
      reply = ctx.reply(big)
      return reply
    })
    call.abort(new RpcError(Code.CANCELLED, 'cancelled by the client'))
    expect(await outcome(reply)).toBe(Code.CANCELLED)
    await finished
    expect(host.frames).toEqual([])
    expect(call.replyValue).toBeUndefined()
    expect(call.messagesSent).toBe(0)
    expect(call.status?.code).toBe(Code.CANCELLED)
  })

  it('a deadline passing meanwhile sends the error frame instead of the reply', async () => {
    let reply: Promise<void> | undefined
    const { call, host, finished } = start((ctx: Context) => {
      reply = ctx.reply(big)
      return reply
    })
    // What the deadline scheduler calls when the call's time is up.
    call.fire()
    expect(await outcome(reply)).toBe(Code.DEADLINE_EXCEEDED)
    await finished
    expect(host.frames.map((f) => f.flags)).toEqual([Flags.ERROR])
    expect(call.status?.code).toBe(Code.DEADLINE_EXCEEDED)
  })

  it('a second reply, or a chunk, while the first deflates fails FAILED_PRECONDITION; the first goes', async () => {
    let second: Promise<void> | undefined
    let chunk: Promise<void> | undefined
    let first: Promise<void> | undefined
    const { host, finished } = start((ctx: Context) => {
      first = ctx.reply(big)
      second = ctx.reply('again')
      chunk = ctx.stream().writeChunk('chunk')
    })
    expect(await outcome(second)).toBe(Code.FAILED_PRECONDITION)
    expect(await outcome(chunk)).toBe(Code.FAILED_PRECONDITION)
    expect(await outcome(first)).toBe('sent')
    await finished
    expect(host.frames.map((f) => f.flags)).toEqual([Flags.RESPONSE | Flags.COMPRESSED])
  })

  it('a handler returning while its reply() deflates is not taken for one that never replied', async () => {
    const { host, finished } = start((ctx: Context) => {
      void ctx.reply(big)
    })
    await finished
    expect(host.frames.map((f) => f.flags)).toEqual([Flags.RESPONSE | Flags.COMPRESSED])
    expect(host.failures).toEqual([])
  })
})
