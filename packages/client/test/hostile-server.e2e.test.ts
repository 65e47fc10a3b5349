import { encodeFrame, Flags } from '@srpc/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { Code, RpcError } from '../src/index'
import { Harness } from './harness'
import { StubServer } from './v1-stub-server'

const h = new Harness()
const stubs: StubServer[] = []
afterEach(async () => {
  await h.cleanup()
  await Promise.all(stubs.splice(0).map((s) => s.stop()))
})

async function hostile(behaviour: ConstructorParameters<typeof StubServer>[0]): Promise<string> {
  const stub = new StubServer(behaviour)
  stubs.push(stub)
  return stub.start()
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; ms: number }> {
  const started = performance.now()
  const err = await promise.then(
    () => new Error('resolved'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RpcError)
  return { code: (err as RpcError).code, ms: performance.now() - started }
}

describe('a hostile server', () => {
  it('sending garbage fails the calls on that connection with PROTOCOL_ERROR at once', async () => {
    const address = await hostile((_frame, socket) => socket.write(Buffer.from('this is not a frame at all')))
    const pool = await h.pool(address, { helloTimeout: 100 })
    const { code, ms } = await failure(pool.call('/x', '', { timeout: 5000 }))
    expect(code).toBe(Code.PROTOCOL_ERROR)
    expect(ms).toBeLessThan(1000)
  })

  it('announcing a frame past maxFrameSize fails them before the body is read', async () => {
    const address = await hostile((frame, socket) => {
      const header = encodeFrame(Flags.RESPONSE, frame.id, '', Buffer.alloc(0), Buffer.allocUnsafe)
      header.writeUInt32BE(0xfffffff0, 12) // claims almost 4 GiB, sends nothing more
      socket.write(header)
    })
    const pool = await h.pool(address, { maxFrameSize: 1024 * 1024 })
    const { code, ms } = await failure(pool.call('/x', '', { timeout: 5000 }))
    expect(code).toBe(Code.PROTOCOL_ERROR)
    expect(ms).toBeLessThan(1000)
  })

  it('answering an id the client never used is a protocol error', async () => {
    const address = await hostile((frame, socket) => {
      socket.write(encodeFrame(Flags.RESPONSE, 999_999, '', Buffer.from('who asked?')))
      socket.write(encodeFrame(Flags.RESPONSE, frame.id, '', Buffer.from('late')))
    })
    const pool = await h.pool(address)
    const { code } = await failure(pool.call('/x', '', { timeout: 5000 }))
    expect(code).toBe(Code.PROTOCOL_ERROR)
  })

  it('saying nothing at all ends the call at its deadline with DEADLINE_EXCEEDED', async () => {
    const address = await hostile(() => {})
    const pool = await h.pool(address)
    const { code, ms } = await failure(pool.call('/x', '', { timeout: 200 }))
    expect(code).toBe(Code.DEADLINE_EXCEEDED)
    expect(ms).toBeGreaterThanOrEqual(190)
    expect(ms).toBeLessThan(1000)
    const stream = failure(
      (async () => {
        for await (const _ of pool.callStream('/s', '', { timeout: 200 })) {
          // nothing arrives
        }
      })(),
    )
    expect((await stream).code).toBe(Code.DEADLINE_EXCEEDED)
  })

  it('sending a reply frame of the wrong kind fails only that call', async () => {
    const address = await hostile((frame, socket) => {
      if (frame.type === '/wrong') socket.write(encodeFrame(Flags.STREAM, frame.id, '', Buffer.from('chunk')))
      // How a v1 server (and srpc) frames a stream chunk: RESPONSE|STREAM is not a reply.
      else if (frame.type === '/chunk')
        socket.write(encodeFrame(Flags.RESPONSE | Flags.STREAM, frame.id, '', Buffer.from('chunk')))
      else socket.write(encodeFrame(Flags.RESPONSE, frame.id, '', Buffer.from('ok')))
    })
    const pool = await h.pool(address)
    const { code } = await failure(pool.call('/wrong', '', { timeout: 2000 }))
    expect(code).toBe(Code.FAILED_PRECONDITION)
    expect((await failure(pool.call('/chunk', '', { timeout: 2000 }))).code).toBe(Code.FAILED_PRECONDITION)
    expect((await pool.call('/fine', '', { timeout: 2000 })).toString()).toBe('ok')
  })
})

describe('a server that never answers a call without a timeout', () => {
  it('still ends the call, at the pool default timeout, with DEADLINE_EXCEEDED', async () => {
    const address = await hostile(() => {})
    const pool = await h.pool(address, { defaultTimeout: 300 })
    const { code, ms } = await failure(pool.call('/x'))
    expect(code).toBe(Code.DEADLINE_EXCEEDED)
    expect(ms).toBeGreaterThanOrEqual(290)
    expect(ms).toBeLessThan(1500)
  })
})
