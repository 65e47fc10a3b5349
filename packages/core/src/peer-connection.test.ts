import { deflateRawSync } from 'node:zlib'
import {
  Code,
  ControlKind,
  decodeControl,
  encodeControl,
  encodeFrame,
  Flags,
  type FrameId,
  RpcError,
} from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Frame } from './buffer'
import type { PeerCall } from './call-host'
import { ASYNC_INFLATE_MIN, resolveCompressionOptions } from './compression'
import { ALL_FEATURES, announce, answer, type ExtensionSettings } from './extensions'
import { FrameConnection } from './frame-connection'
import { memoryTransportPair } from './memory-transport'
import { PeerConnection, type PeerConnectionOptions, type PeerRole, type PeerSide } from './peer-connection'

const SETTINGS: ExtensionSettings = {
  features: ALL_FEATURES,
  compression: resolveCompressionOptions(false),
  initialWindow: 64 * 1024,
  maxFrameSize: 1024 * 1024,
}

class TestCall implements PeerCall {
  readonly id: FrameId
  readonly granted: number[] = []
  readonly frames: Frame[] = []
  failed: RpcError | undefined
  constructor(id: FrameId) {
    this.id = id
  }
  grant(bytes: number): void {
    this.granted.push(bytes)
  }
}

/** Records what the connection hands its role; frames for ids without a call go through `orphan`. */
class TestRole implements PeerRole<TestCall> {
  conn!: PeerConnection<TestCall>
  readonly cancels: [FrameId, Code][] = []
  readonly goaways: FrameId[] = []
  readonly released: number[] = []
  readonly closed: (RpcError | undefined)[] = []
  onFrame(frame: Frame, call: TestCall | undefined): void {
    if (call === undefined) return this.conn.orphan(frame.id, 'frame for id')
    call.frames.push({ ...frame }) // the frame object is refilled for the next frame
  }
  onCancel(call: TestCall, code: Code): void {
    this.cancels.push([call.id, code])
  }
  onGoaway(lastId: FrameId): void {
    this.goaways.push(lastId)
  }
  onReleased(inFlight: number): void {
    this.released.push(inFlight)
  }
  failCall(call: TestCall, error: RpcError): void {
    call.failed = error
  }
  lostError(error: RpcError | undefined): RpcError {
    return new RpcError(Code.UNAVAILABLE, 'connection lost', { cause: error })
  }
  onClosed(error: RpcError | undefined): void {
    this.closed.push(error)
  }
}

function peer(
  side: PeerSide,
  transport: ReturnType<typeof memoryTransportPair>[number],
  options: Partial<PeerConnectionOptions> = {},
): { conn: PeerConnection<TestCall>; role: TestRole } {
  const role = new TestRole()
  role.conn = new PeerConnection(transport, role, {
    side,
    settings: SETTINGS,
    streamHighWaterMark: 16,
    maxBufferedBytes: 1024 * 1024,
    maxFrameSize: SETTINGS.maxFrameSize,
    ...options,
  })
  return { conn: role.conn, role }
}

/** A server-side peer connection and a bare frame connection as its client, to send any frame. */
function withRawClient(options: Partial<PeerConnectionOptions> = {}) {
  const [clientEnd, serverEnd] = memoryTransportPair()
  const received: Frame[] = []
  const closed: (RpcError | undefined)[] = []
  const raw = new FrameConnection(clientEnd, {
    onFrame: (frame) => received.push(frame),
    onClose: (error) => closed.push(error),
  })
  const server = peer('server', serverEnd, options)
  return { raw, received, rawClosed: closed, ...server }
}

/** Lets the in-memory transport deliver (it does so in later event-loop turns). */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

function helloAndAck(raw: FrameConnection): void {
  raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO, capabilities: announce(SETTINGS) }))
  raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
}

/** The value of the HELLO a server answered with, among the frames its raw client received. */
function helloAnswer(received: Frame[]): Buffer {
  const hello = received.find(
    (f) => f.flags === Flags.CONTROL && decodeControl(f)?.kind === ControlKind.HELLO,
  )
  expect(hello).toBeDefined()
  return Buffer.from(hello!.value)
}

function controlKinds(frames: Frame[]): number[] {
  return frames.filter((f) => f.flags === Flags.CONTROL).map((f) => decodeControl(f)!.kind)
}

afterEach(() => {
  vi.useRealTimers()
})

describe('PeerConnection negotiation', () => {
  it('agrees on extensions with HELLO, answer and HELLO_ACK, and both ends hold them in force', async () => {
    const [a, b] = memoryTransportPair()
    const client = peer('client', a, { helloTimeout: 5000 })
    const server = peer('server', b)
    expect(client.conn.extensions.has('ping')).toBe(false)
    await client.conn.negotiated
    await turns()
    expect(client.conn.extensions.has('ping')).toBe(true)
    expect(server.conn.extensions.has('ping')).toBe(true)
    expect(server.conn.extended).toBe(true)
    client.conn.destroy(new RpcError(Code.CANCELLED, 'test over'))
  })

  it('fails the connection with PROTOCOL_ERROR on a second HELLO', async () => {
    const { raw, role } = withRawClient()
    helloAndAck(raw)
    raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO, capabilities: announce(SETTINGS) }))
    await turns()
    expect(role.closed.map((e) => e?.code)).toEqual([Code.PROTOCOL_ERROR])
  })

  it('answers the same HELLO on two connections with the same bytes and the same agreed features', async () => {
    const first = withRawClient()
    const second = withRawClient()
    helloAndAck(first.raw)
    helloAndAck(second.raw)
    await turns()
    const answers = [first, second].map(({ received }) => helloAnswer(received))
    expect(answers[1]).toEqual(answers[0])
    expect(decodeControl({ flags: Flags.CONTROL, id: 0, type: '', value: answers[0] } as Frame)).toEqual({
      kind: ControlKind.HELLO,
      capabilities: answer(SETTINGS, announce(SETTINGS)),
    })
    expect(second.conn.extensions.features).toBe(first.conn.extensions.features)
    expect([...second.conn.extensions.features].sort()).toEqual(
      [...answer(SETTINGS, announce(SETTINGS)).features].sort(),
    )
  })

  it('answers each of two different HELLOs, sent in turns, with its own agreement', async () => {
    const full = announce(SETTINGS)
    const narrow = { ...full, features: full.features.filter((f) => f !== 'ping' && f !== 'cancel') }
    const offers = [full, narrow, full]
    const peers = offers.map(() => withRawClient())
    for (const [i, { raw }] of peers.entries()) {
      raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO, capabilities: offers[i] }))
      raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
      await turns()
    }
    for (const [i, { received, conn }] of peers.entries()) {
      const sent = decodeControl({
        flags: Flags.CONTROL,
        id: 0,
        type: '',
        value: helloAnswer(received),
      } as Frame)
      expect(sent).toEqual({ kind: ControlKind.HELLO, capabilities: answer(SETTINGS, offers[i]) })
      expect(conn.extensions.has('ping')).toBe(offers[i] === full)
      expect(conn.extensions.has('cancel')).toBe(offers[i] === full)
    }
  })

  it('fails every connection that sends a malformed HELLO, the second as the first', async () => {
    for (let i = 0; i < 2; i++) {
      const { raw, role } = withRawClient()
      raw.sendEncoded(encodeFrame(Flags.CONTROL, 0, '', Buffer.from([ControlKind.HELLO, 0x7b])))
      await turns()
      expect(role.closed.map((e) => e?.code)).toEqual([Code.PROTOCOL_ERROR])
    }
  })

  it('fails the connection with PROTOCOL_ERROR on a HELLO_ACK before any HELLO', async () => {
    const { raw, role } = withRawClient()
    raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
    await turns()
    expect(role.closed.map((e) => e?.code)).toEqual([Code.PROTOCOL_ERROR])
  })
})

describe('PeerConnection control frames', () => {
  it('answers PING with PONG carrying the same payload, and ping() measures a round trip', async () => {
    const [a, b] = memoryTransportPair()
    const client = peer('client', a, { helloTimeout: 5000 })
    peer('server', b)
    const rtt = await client.conn.ping(5000)
    expect(rtt).toBeGreaterThanOrEqual(0)
    const { raw, received } = withRawClient()
    helloAndAck(raw)
    const payload = Buffer.from('01234567')
    raw.sendEncoded(encodeControl(0, { kind: ControlKind.PING, payload }))
    await turns()
    const pong = received.map((f) => decodeControl(f)).find((m) => m?.kind === ControlKind.PONG)
    expect(pong && Buffer.from((pong as { payload: Uint8Array }).payload).toString()).toBe('01234567')
    client.conn.destroy(new RpcError(Code.CANCELLED, 'test over'))
  })

  it('refuses ping() with UNIMPLEMENTED when the peer never negotiated (plain v1)', async () => {
    const [a] = memoryTransportPair()
    const client = peer('client', a, { helloTimeout: 20 })
    await expect(client.conn.ping(1000)).rejects.toMatchObject({ code: Code.UNIMPLEMENTED })
    client.conn.destroy(new RpcError(Code.CANCELLED, 'test over'))
  })

  it('routes WINDOW_UPDATE to the call grant, CANCEL and GOAWAY to the role', async () => {
    const { raw, conn, role } = withRawClient()
    helloAndAck(raw)
    const call = new TestCall(3)
    conn.register(call)
    raw.sendEncoded(encodeControl(3, { kind: ControlKind.WINDOW_UPDATE, bytes: 4096 }))
    raw.sendEncoded(encodeControl(9, { kind: ControlKind.WINDOW_UPDATE, bytes: 1 }))
    raw.sendEncoded(encodeControl(3, { kind: ControlKind.CANCEL, code: Code.CANCELLED }))
    raw.sendEncoded(encodeControl(9, { kind: ControlKind.CANCEL, code: Code.CANCELLED }))
    raw.sendEncoded(
      encodeControl(0, { kind: ControlKind.GOAWAY, lastId: 3, code: Code.UNAVAILABLE, message: 'bye' }),
    )
    await turns()
    expect(call.granted).toEqual([4096])
    expect(role.cancels).toEqual([[3, Code.CANCELLED]])
    expect(role.goaways).toEqual([3])
    expect(role.closed).toEqual([])
  })

  it('sends CANCEL for a cancelled call only once the peer negotiated it', async () => {
    const { raw, conn, received } = withRawClient()
    conn.register(new TestCall(1))
    conn.cancel(1, new RpcError(Code.DEADLINE_EXCEEDED, 'late'))
    await turns()
    expect(controlKinds(received)).toEqual([])
    helloAndAck(raw)
    await turns()
    conn.register(new TestCall(2))
    conn.cancel(2, new RpcError(Code.DEADLINE_EXCEEDED, 'late'))
    await turns()
    expect(controlKinds(received)).toEqual([ControlKind.HELLO, ControlKind.CANCEL])
    expect(conn.inFlight).toBe(0)
  })

  it('sends no CANCEL for a call whose opening was deferred and never went out', async () => {
    const { raw, conn, received, role } = withRawClient()
    helloAndAck(raw)
    await turns()
    for (const id of [1, 2, 3]) {
      conn.register(new TestCall(id))
      conn.deferOpening(id)
    }
    // 1: cancelled while deferred; 2: its opening goes; 3: the connection fails it.
    conn.cancel(1, new RpcError(Code.CANCELLED, 'cancelled'))
    expect(role.released).toEqual([2])
    expect(conn.takeDeferred(1)).toBe(false)
    expect(conn.takeDeferred(2)).toBe(true)
    expect(conn.takeDeferred(2)).toBe(false)
    conn.cancel(2, new RpcError(Code.CANCELLED, 'cancelled'))
    await turns()
    // Only the call whose opening was taken is cancelled on the wire.
    expect(received.filter((f) => f.flags === Flags.CONTROL && f.id !== 0).map((f) => f.id)).toEqual([2])
    conn.destroy(new RpcError(Code.CANCELLED, 'going away'))
    expect(conn.takeDeferred(3)).toBe(false)
  })
})

describe('PeerConnection frames for ids without a call', () => {
  it('drops a late frame for a call that finished, and keeps the connection', async () => {
    const { raw, conn, role } = withRawClient()
    conn.register(new TestCall(5))
    conn.forget(5)
    raw.sendFrame(Flags.STREAM, 5, '', Buffer.from('late'))
    raw.sendFrame(Flags.STREAM, 4, '', Buffer.from('also before the highest id'))
    await turns()
    expect(role.closed).toEqual([])
    expect(conn.state).toBe('open')
  })

  it('fails the connection with PROTOCOL_ERROR for a frame naming an id never opened', async () => {
    const { raw, conn, role, received } = withRawClient()
    conn.register(new TestCall(5))
    raw.sendFrame(Flags.STREAM, 6, '', Buffer.from('who?'))
    await turns()
    expect(role.closed.map((e) => e?.code)).toEqual([Code.PROTOCOL_ERROR])
    // The peer is told why: an ERROR frame for the whole connection.
    expect(received.some((f) => f.id === 0 && f.flags === Flags.ERROR)).toBe(true)
    // The call in flight ends with the role's error for a lost connection.
    expect(conn.calls.size).toBe(0)
  })

  it('counts an id the role noted as opened (a refused open) as known', async () => {
    const { raw, conn, role } = withRawClient()
    conn.noteId(8)
    raw.sendFrame(Flags.STREAM, 8, '', Buffer.from('after the refusal'))
    await turns()
    expect(role.closed).toEqual([])
  })
})

describe('PeerConnection lifecycle', () => {
  it('destroy(err) fails every call in flight with err and closes once', async () => {
    const { conn, role, rawClosed } = withRawClient()
    const calls = [new TestCall(1), new TestCall(2), new TestCall(3)]
    for (const call of calls) conn.register(call)
    const error = new RpcError(Code.CANCELLED, 'going away now')
    const destroyed = conn.destroy(error)
    expect(calls.map((c) => c.failed)).toEqual([error, error, error])
    expect(conn.state).toBe('closed')
    await destroyed
    await turns()
    expect(role.closed).toHaveLength(1)
    expect(rawClosed).toHaveLength(1)
    expect(conn.inFlight).toBe(0)
  })

  it('close() waits for the calls in flight, then closes the transport', async () => {
    const { raw, conn, role, rawClosed } = withRawClient()
    const [first, second] = [new TestCall(1), new TestCall(2)]
    conn.register(first)
    conn.register(second)
    const closed = conn.close()
    expect(conn.state).toBe('closing')
    raw.sendFrame(Flags.STREAM, 2, '', Buffer.from('still served'))
    await turns()
    expect(second.frames.map((f) => f.value.toString())).toEqual(['still served'])
    conn.forget(1)
    await turns()
    expect(rawClosed).toEqual([])
    conn.forget(2)
    await closed
    await turns()
    expect(role.closed).toEqual([undefined])
    expect(rawClosed).toHaveLength(1)
    expect(first.failed).toBeUndefined()
  })

  it('ends the calls still in flight with the role error when the peer goes away', async () => {
    const { raw, conn, role } = withRawClient()
    const call = new TestCall(1)
    conn.register(call)
    raw.destroy()
    await turns()
    expect(call.failed?.code).toBe(Code.UNAVAILABLE)
    expect(call.failed?.message).toBe('connection lost')
    expect(role.closed).toHaveLength(1)
  })
})

describe('PeerConnection keepalive', () => {
  const KEEPALIVE = { interval: 1000, timeout: 500 }

  it('pings after the interval and closes with UNAVAILABLE when no answer comes within the timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { raw, role, received } = withRawClient({ keepalive: KEEPALIVE })
    helloAndAck(raw)
    await turns()
    expect(controlKinds(received)).toEqual([ControlKind.HELLO])
    vi.advanceTimersByTime(999)
    await turns()
    expect(controlKinds(received)).toEqual([ControlKind.HELLO])
    vi.advanceTimersByTime(1)
    await turns()
    expect(controlKinds(received)).toEqual([ControlKind.HELLO, ControlKind.PING])
    expect(role.closed).toEqual([])
    vi.advanceTimersByTime(500)
    await turns()
    expect(role.closed.map((e) => e?.code)).toEqual([Code.UNAVAILABLE])
  })

  it('stays open as long as the peer answers its pings', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const [a, b] = memoryTransportPair()
    const client = peer('client', a)
    const server = peer('server', b, { keepalive: KEEPALIVE })
    await turns()
    expect(server.conn.extensions.has('ping')).toBe(true)
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(KEEPALIVE.interval)
      await turns()
      vi.advanceTimersByTime(KEEPALIVE.timeout)
      await turns()
    }
    expect(server.role.closed).toEqual([])
    expect(server.conn.state).toBe('open')
    client.conn.destroy(new RpcError(Code.CANCELLED, 'test over'))
  })

  it('does not start for a peer that never negotiated', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const { role, received } = withRawClient({ keepalive: KEEPALIVE })
    vi.advanceTimersByTime(10 * KEEPALIVE.interval)
    await turns()
    expect(controlKinds(received)).toEqual([])
    expect(role.closed).toEqual([])
  })
})

describe('PeerConnection large compressed frames (inflated on the zlib pool)', () => {
  const COMPRESSING: ExtensionSettings = { ...SETTINGS, compression: resolveCompressionOptions(true) }
  /** 256 KiB of JSON-like text: deflates to about 20 KiB, over ASYNC_INFLATE_MIN. */
  const big = Buffer.from(
    Array.from({ length: 4500 }, (_, i) => {
      const n = (i * 2654435761) % 1000003
      return JSON.stringify({ id: n, name: `item-${n % 997}`, ok: n % 2 === 0, score: (n % 10007) / 7 })
    }).join(','),
  )

  /** Records each frame's payload as the role decodes it (after a metadata block), or the error. */
  class DecodingRole extends TestRole {
    readonly decoded: Array<string | Buffer> = []
    override onFrame(frame: Frame, call: TestCall | undefined): void {
      let value = frame.value
      if (frame.flags & Flags.METADATA) value = value.subarray(4 + value.readUInt32BE(0))
      try {
        this.decoded.push(this.conn.decodePayload(frame.flags, value))
      } catch (err) {
        this.decoded.push((err as RpcError).code)
      }
      super.onFrame(frame, call)
    }
  }

  function setup() {
    const [clientEnd, serverEnd] = memoryTransportPair()
    const raw = new FrameConnection(clientEnd, { onFrame: () => {}, onClose: () => {} })
    const role = new DecodingRole()
    role.conn = new PeerConnection(serverEnd, role, {
      side: 'server',
      settings: COMPRESSING,
      streamHighWaterMark: 16,
      maxBufferedBytes: 1024 * 1024,
      maxFrameSize: 1024 * 1024,
    })
    raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO, capabilities: announce(COMPRESSING) }))
    raw.sendEncoded(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
    role.conn.register(new TestCall(1))
    // Reading pauses while a value inflates off the event loop (the sync path never pauses here).
    const pauses = { count: 0 }
    const pause = serverEnd.pause.bind(serverEnd)
    serverEnd.pause = () => {
      pauses.count++
      pause()
    }
    return { raw, role, pauses }
  }

  it('delivers a large compressed frame inflated, and the frames after it in order', async () => {
    const { raw, role, pauses } = setup()
    const deflated = deflateRawSync(big, { level: 1 })
    expect(deflated.length).toBeGreaterThanOrEqual(ASYNC_INFLATE_MIN)
    const block = Buffer.from([0, 0, 0, 0]) // an empty metadata block before the payload
    raw.sendFrame(Flags.STREAM | Flags.COMPRESSED, 1, '', deflated)
    raw.sendFrame(Flags.STREAM, 1, '', Buffer.from('small 1'))
    raw.sendFrame(Flags.STREAM | Flags.COMPRESSED | Flags.METADATA, 1, '', deflated, block)
    raw.sendFrame(Flags.STREAM, 1, '', Buffer.from('small 2'))
    raw.sendFrame(Flags.STREAM | Flags.COMPRESSED, 1, '', deflateRawSync(Buffer.from('tiny')))
    await vi.waitFor(() => expect(role.decoded.length).toBe(5), { timeout: 10_000, interval: 5 })
    expect(role.decoded.map((d) => (Buffer.isBuffer(d) && d.length > 100 ? 'big' : d.toString()))).toEqual([
      'big',
      'small 1',
      'big',
      'small 2',
      'tiny',
    ])
    expect((role.decoded[0] as Buffer).equals(big)).toBe(true)
    expect(pauses.count).toBeGreaterThan(0)
    expect(role.closed).toEqual([])
    role.conn.destroy(new RpcError(Code.CANCELLED, 'test over'))
  })

  it('fails only that payload with DATA_LOSS (corrupt) or RESOURCE_EXHAUSTED (past maxFrameSize), and goes on', async () => {
    const { raw, role } = setup()
    const corrupt = Buffer.alloc(32 * 1024, 0xff)
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { level: 1 })
    expect(bomb.length).toBeGreaterThanOrEqual(ASYNC_INFLATE_MIN)
    raw.sendFrame(Flags.STREAM | Flags.COMPRESSED, 1, '', corrupt)
    raw.sendFrame(Flags.STREAM | Flags.COMPRESSED, 1, '', bomb)
    raw.sendFrame(Flags.STREAM, 1, '', Buffer.from('after'))
    await vi.waitFor(() => expect(role.decoded.length).toBe(3), { timeout: 10_000, interval: 5 })
    expect(role.decoded.map(String)).toEqual([Code.DATA_LOSS, Code.RESOURCE_EXHAUSTED, 'after'])
    expect(role.closed).toEqual([])
    role.conn.destroy(new RpcError(Code.CANCELLED, 'test over'))
  })
})
