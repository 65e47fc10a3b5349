import { Code, RpcError } from '@srpc/protocol'
import { Server } from '@srpc/server'
import { type SelfSignedResult, selfSigned } from '@srpc/tlsutil'
import { WebClient, type WebSocketConstructor } from '@srpc/web'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { z } from 'zod'
import {
  type Codec,
  contract,
  createClient,
  implement,
  json,
  msgpack,
  serverStream,
  session,
  unary,
} from '../src/index'
import { collect, errorOf } from './harness'

// The browser's client under a contract, over a real wss listener: the same typed calls a page
// makes, with `ws` standing in for the page's WebSocket (Node 20 has none).

let material: Promise<SelfSignedResult> | undefined
const servers: Server[] = []
const clients: WebClient[] = []
/** Handler bugs the servers reported: none is expected. */
const serverErrors: Error[] = []
afterEach(async () => {
  expect(serverErrors.splice(0)).toEqual([])
  await Promise.all(clients.splice(0).map((c) => c.destroy()))
  await Promise.all(servers.splice(0).map((s) => s.shutdown({ timeout: 200 })))
})

const Note = z.object({ id: z.string(), text: z.string().min(1).max(20), at: z.number() })

function notesContract(codec: Codec) {
  return contract(
    'notes',
    {
      add: unary({ input: z.object({ text: z.string().min(1).max(20) }), output: Note }),
      since: serverStream({ input: z.object({ after: z.number().int().min(0) }), output: Note }),
      echo: session({
        input: z.object({ text: z.string().min(1) }),
        output: z.object({ text: z.string(), n: z.number() }),
      }),
    },
    { codec },
  )
}

async function start(codec: Codec) {
  material ??= selfSigned(['127.0.0.1'])
  const { serverOptions, clientOptions } = await material
  const Notes = notesContract(codec)
  const server = new Server({ address: '127.0.0.1:0', tls: serverOptions })
  servers.push(server)
  server.on('error', (err) => serverErrors.push(err))
  let next = 0
  implement(server, Notes, {
    add: ({ text }, ctx) => {
      ctx.responseMetadata['note-count'] = String(++next)
      return { id: `n${next}`, text, at: next }
    },
    since: async function* ({ after }, ctx) {
      for (let at = after + 1; at <= after + 3; at++) yield { id: `n${at}`, text: `note ${at}`, at }
      ctx.responseMetadata.last = String(after + 3)
    },
    echo: async (s, ctx) => {
      let n = 0
      for await (const { text } of s.messages()) await s.send({ text: text.toUpperCase(), n: ++n })
      ctx.responseMetadata.echoed = String(n)
    },
  })
  const { url } = await server.listenWebSocket()
  class TrustingWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { ca: clientOptions.ca })
    }
  }
  const web = new WebClient({ url, WebSocket: TrustingWebSocket as unknown as WebSocketConstructor })
  clients.push(web)
  return { notes: createClient(web, Notes), web }
}

describe.each([
  ['json', json],
  ['msgpack', msgpack],
])('createClient over a WebClient and wss, %s codec', (_, codec) => {
  it('makes typed unary calls, with response metadata, from the first call of a new connection', async () => {
    const { notes, web } = await start(codec)
    let seen: Record<string, string> | undefined
    const note = await notes.add({ text: 'hello' }, { onResponseMetadata: (m) => (seen = { ...m }) })
    expect(note).toEqual({ id: 'n1', text: 'hello', at: 1 })
    expect(seen).toEqual({ 'note-count': '1' })
    expect(web.state).toBe('ready')
  })

  it('reads a typed server stream and its response metadata', async () => {
    const { notes } = await start(codec)
    let seen: Record<string, string> | undefined
    const stream = notes.since({ after: 4 }, { onResponseMetadata: (m) => (seen = { ...m }) })
    expect((await collect(stream)).map((n) => n.at)).toEqual([5, 6, 7])
    expect(stream.responseMetadata).toEqual({ last: '7' })
    expect(seen).toEqual({ last: '7' })
  })

  it('holds a typed session both ways, with response metadata at its end', async () => {
    const { notes } = await start(codec)
    let seen: Record<string, string> | undefined
    const s = await notes.echo({ onResponseMetadata: (m) => (seen = { ...m }) })
    await s.send({ text: 'a' })
    expect(await s.receive()).toEqual({ text: 'A', n: 1 })
    await s.send({ text: 'b' })
    expect(await s.receive()).toEqual({ text: 'B', n: 2 })
    await s.close()
    expect(await s.receive()).toBeUndefined()
    expect(s.responseMetadata).toEqual({ echoed: '2' })
    expect(seen).toEqual({ echoed: '2' })
  })

  it('fails a call whose response metadata callback throws, with what it threw', async () => {
    const { notes } = await start(codec)
    const refuse = () => {
      throw new RpcError(Code.PERMISSION_DENIED, 'not this server')
    }
    expect((await errorOf(notes.add({ text: 'a' }, { onResponseMetadata: refuse }))).code).toBe(
      Code.PERMISSION_DENIED,
    )
    const stream = notes.since({ after: 0 }, { onResponseMetadata: refuse })
    expect((await errorOf(collect(stream))).code).toBe(Code.PERMISSION_DENIED)
  })

  it('answers input the schema refuses with INVALID_ARGUMENT and the issues, on every kind', async () => {
    const { notes } = await start(codec)
    const unaryError = await errorOf(notes.add({ text: 'x'.repeat(21) }))
    expect(unaryError.code).toBe(Code.INVALID_ARGUMENT)
    expect(unaryError.details).toMatchObject({ issues: [{ path: ['text'] }] })
    const streamError = await errorOf(collect(notes.since({ after: -1 })))
    expect(streamError.code).toBe(Code.INVALID_ARGUMENT)
    expect(streamError.details).toMatchObject({ issues: [{ path: ['after'] }] })
    const s = await notes.echo()
    await s.send({ text: '' })
    const sessionError = await errorOf(s.receive())
    expect(sessionError.code).toBe(Code.INVALID_ARGUMENT)
    expect(sessionError.details).toMatchObject({ issues: [{ path: ['text'] }] })
    expect(sessionError).toBeInstanceOf(RpcError)
  })
})
