import { Code, decodeErrorValue, Flags, RpcError, splitMetadata } from '@srpc/protocol'
import { selfSigned } from '@srpc/tlsutil'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Server } from '../src/index'
import { RawClient } from './raw-client'

let tls: Awaited<ReturnType<typeof selfSigned>>
beforeAll(async () => {
  tls = await selfSigned(['127.0.0.1'])
})

let server: Server | undefined
let client: RawClient | undefined
afterEach(async () => {
  client?.close()
  await server?.shutdown({ timeout: 100 })
})

const results: (Record<string, string> | undefined)[] = []

async function start(): Promise<RawClient> {
  results.length = 0
  server = new Server({
    address: '127.0.0.1:0',
    tls: tls.serverOptions,
    interceptors: [
      (next) => async (call) => {
        const result = await next(call)
        results.push(result.metadata && { ...result.metadata })
        return result
      },
    ],
  })
  server.handle('/missing', () => {
    throw new RpcError(Code.NOT_FOUND, 'no user 42', { details: { id: '42' } })
  })
  server.handle('/with-md', (ctx) => {
    ctx.responseMetadata['x-cache'] = 'hit'
    return 'body'
  })
  server.handle(
    '/ticks',
    async (ctx) => {
      ctx.responseMetadata['x-count'] = '2'
      const stream = ctx.stream()
      await stream.writeChunk('t1')
      await stream.writeChunk('t2', true)
    },
    { kind: 'server-stream' },
  )
  server.handle('/unary', () => 'one', { kind: 'unary' })
  server.handle(
    '/chat',
    async (ctx) => {
      ctx.responseMetadata.bye = 'now'
      for await (const m of ctx.messages()) await ctx.sendMessage(m)
    },
    { kind: 'session' },
  )
  const { port } = await server.listen()
  client = await RawClient.open(port, tls.ca)
  return client
}

describe('error details and response metadata', () => {
  it('reach a v1 client as plain v1: code and message only, no metadata block', async () => {
    const c = await start()
    c.send(Flags.REQUEST, 1, '/missing', '')
    c.send(Flags.REQUEST, 2, '/with-md', '')
    c.send(Flags.REQUEST, 3, '/ticks', '')
    const frames = await c.frames(4)
    const byId = (id: number) => frames.filter((f) => f.id === id)
    expect(byId(1)[0].value.toString()).toBe('{"code":"NOT_FOUND","message":"no user 42"}')
    expect(byId(2).map((f) => [f.flags, f.value.toString()])).toEqual([[Flags.RESPONSE, 'body']])
    // A v1 client may open a stream with a plain REQUEST: a stream route serves it.
    expect(byId(3).map((f) => [f.flags, f.value.toString()])).toEqual([
      [0x06, 't1'],
      [0x0e, 't2'],
    ])
  })

  it('travel to a client that negotiated them: details in the error JSON, a block before the reply and on the ends', async () => {
    const c = await start()
    const caps = await c.negotiate(['details', 'response-metadata'])
    expect(caps.features).toEqual(['details', 'response-metadata'])
    c.send(Flags.REQUEST, 1, '/missing', '')
    const [error] = await c.frames(1)
    expect(error.value.toString()).toBe('{"code":"NOT_FOUND","message":"no user 42","details":{"id":"42"}}')
    expect(decodeErrorValue(error.value).details).toEqual({ id: '42' })

    c.send(Flags.REQUEST, 2, '/with-md', '')
    const [reply] = await c.frames(1)
    expect(reply.flags).toBe(Flags.RESPONSE | Flags.METADATA)
    const split = splitMetadata(reply.value)
    expect({ ...split.metadata }).toEqual({ 'x-cache': 'hit' })
    expect(split.payload.toString()).toBe('body')

    // The last chunk goes as an ordinary one; the block rides on a bare end marker.
    c.send(Flags.REQUEST | Flags.STREAM, 3, '/ticks', '')
    const chunks = await c.frames(3)
    expect(chunks.map((f) => f.flags)).toEqual([0x06, 0x06, 0x0e | Flags.METADATA])
    const end = splitMetadata(chunks[2].value)
    expect({ ...end.metadata }).toEqual({ 'x-count': '2' })
    expect(end.payload.length).toBe(0)

    c.send(Flags.STREAM, 4, '/chat', '')
    c.send(Flags.STREAM, 4, '', 'hi')
    c.send(Flags.STREAM | Flags.STREAM_END, 4, '', '')
    const session = await c.frames(2)
    expect(session.map((f) => f.flags)).toEqual([
      Flags.STREAM,
      Flags.STREAM | Flags.STREAM_END | Flags.METADATA,
    ])
    expect({ ...splitMetadata(session[1].value).metadata }).toEqual({ bye: 'now' })
    // Server interceptors see what went out (the failed call has no result).
    await expect.poll(() => results.length).toBe(3)
    expect(results).toEqual([{ 'x-cache': 'hit' }, { 'x-count': '2' }, { bye: 'now' }])
  })
})

describe('a route that declared its kind', () => {
  it('refuses calls of another kind with FAILED_PRECONDITION naming the right call', async () => {
    const c = await start()
    await c.negotiate([])
    c.send(Flags.REQUEST, 1, '/ticks', '') // an srpc client's call() on a stream route
    c.send(Flags.REQUEST | Flags.STREAM, 2, '/unary', '') // callStream() on a unary route
    c.send(Flags.STREAM, 3, '/unary', '') // a session on a unary route
    c.send(Flags.REQUEST, 4, '/chat', '') // a request on a session route
    c.send(Flags.REQUEST, 5, '/unary', '') // the right kind still works
    const frames = await c.frames(5)
    const errors = new Map(
      frames.filter((f) => f.flags === Flags.ERROR).map((f) => [f.id, decodeErrorValue(f.value)]),
    )
    expect([...errors.keys()].sort()).toEqual([1, 2, 3, 4])
    for (const error of errors.values()) expect(error.code).toBe(Code.FAILED_PRECONDITION)
    expect(errors.get(1)!.message).toBe(
      'route /ticks serves server-stream calls, not unary: use callStream()',
    )
    expect(errors.get(2)!.message).toBe('route /unary serves unary calls, not server-stream: use call()')
    expect(errors.get(3)!.message).toBe('route /unary serves unary calls, not session: use call()')
    expect(errors.get(4)!.message).toBe(
      'route /chat serves session calls, not unary: use createBidirectionalSession()',
    )
    expect(frames.find((f) => f.id === 5)?.value.toString()).toBe('one')
  })
})
