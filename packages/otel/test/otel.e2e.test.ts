import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { Code, Pool, RpcError } from '@srpc/client'
import { selfSigned } from '@srpc/tlsutil'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { otelClient } from '../src/index'
import { installSdk, plainMetrics, plainSpan } from './fixtures/sdk.mjs'

type PlainSpan = ReturnType<typeof plainSpan>
type Histogram = { count: number; sum: number }
type Point = { name: string; unit: string; attributes: Record<string, unknown>; value: number & Histogram }
/** What the child answers: its port, its spans or its metrics. */
type Reply = { id: number; error?: string; port: number; spans: PlainSpan[]; metrics: Point[] }

// This process is the client, with the SDK installed globally; the server runs in a child
// process with its own SDK, so trace context can only cross in the call's metadata.
const sdk = installSdk()
const tracer = trace.getTracer('test')

let child: ChildProcess
let port: number
let clientTls: Awaited<ReturnType<typeof selfSigned>>['clientOptions']
let pool: Pool | undefined
let nextId = 0
const waiting = new Map<number, { resolve: (value: Reply) => void; reject: (err: Error) => void }>()

/** Asks the child server something; rejects after 10 s (a child that hangs fails the test, not the run). */
function ask(message: Record<string, unknown>): Promise<Reply> {
  const id = ++nextId
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id)
      reject(new Error(`the child did not answer ${message.cmd} within 10 s`))
    }, 10_000)
    waiting.set(id, {
      resolve: (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      reject: (err) => {
        clearTimeout(timer)
        reject(err)
      },
    })
    child.send({ ...message, id })
  })
}

beforeAll(async () => {
  const certs = await selfSigned(['127.0.0.1'])
  clientTls = certs.clientOptions
  child = fork(new URL('./fixtures/traced-server.mjs', import.meta.url), {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  child.on('message', (message) => {
    const reply = message as Reply
    const entry = waiting.get(reply.id)
    waiting.delete(reply.id)
    if (reply.error) entry?.reject(new Error(reply.error))
    else entry?.resolve(reply)
  })
  ;({ port } = await ask({ cmd: 'start', tls: certs.serverOptions }))
})

afterAll(async () => {
  if (child.connected) {
    const exited = once(child, 'exit')
    await ask({ cmd: 'stop' })
    await exited
  }
})

afterEach(async () => {
  await pool?.destroy()
  pool = undefined
  sdk.spans.reset()
})

function tracedPool(): Pool {
  pool = new Pool({
    address: `127.0.0.1:${port}`,
    tls: clientTls,
    size: 1,
    interceptors: [otelClient({ serverAddress: '127.0.0.1', serverPort: port })],
  })
  return pool
}

function clientSpans(): PlainSpan[] {
  return sdk.spans.getFinishedSpans().map(plainSpan)
}

async function serverSpans(count: number): Promise<PlainSpan[]> {
  const { spans } = await ask({ cmd: 'spans', count })
  return spans
}

function only(spans: PlainSpan[], name: string, kind: SpanKind): PlainSpan {
  const found = spans.filter((s) => s.name === name && s.kind === kind)
  expect(found, `one ${SpanKind[kind]} span named ${name}`).toHaveLength(1)
  return found[0]
}

describe('traces across two processes over TLS', () => {
  it('makes the server span the child of the client span, with RPC attributes, active in the handler', async () => {
    const pool = tracedPool()
    let rootSpanId = ''
    const reply = await tracer.startActiveSpan('checkout', async (root) => {
      rootSpanId = root.spanContext().spanId
      try {
        return JSON.parse((await pool.call('/demo.Greeter/Hello', 'ada', { timeout: 5000 })).toString())
      } finally {
        root.end()
      }
    })
    const client = only(clientSpans(), 'demo.Greeter/Hello', SpanKind.CLIENT)
    expect(client.parentSpanId).toBe(rootSpanId)
    expect(client.attributes).toMatchObject({
      'rpc.system': 'srpc',
      'rpc.service': 'demo.Greeter',
      'rpc.method': 'Hello',
      'server.address': '127.0.0.1',
      'server.port': port,
      'rpc.srpc.status_code': 'OK',
      'rpc.srpc.kind': 'unary',
    })
    expect(client.status.code).toBe(SpanStatusCode.UNSET)

    const server = only(await serverSpans(1), 'demo.Greeter/Hello', SpanKind.SERVER)
    expect(server.traceId).toBe(client.traceId)
    expect(server.parentSpanId).toBe(client.spanId)
    expect(server.attributes).toMatchObject({
      'rpc.system': 'srpc',
      'rpc.service': 'demo.Greeter',
      'rpc.method': 'Hello',
      'rpc.srpc.status_code': 'OK',
      'network.peer.address': '127.0.0.1',
    })
    // The handler saw the server span as the active one.
    expect(reply).toEqual({ hello: 'ada', traceId: server.traceId, spanId: server.spanId })
  })

  it('records errors with their RpcError code: an error on the client, on the server only for its own faults', async () => {
    const pool = tracedPool()
    const denied = await pool.call('/demo.Greeter/Deny', '', { timeout: 5000 }).catch((err) => err)
    expect(denied).toBeInstanceOf(RpcError)
    expect(denied.code).toBe(Code.PERMISSION_DENIED)
    const crashed = await pool.call('/demo.Greeter/Crash', '', { timeout: 5000 }).catch((err) => err)
    expect(crashed.code).toBe(Code.INTERNAL)

    const spans = clientSpans()
    const deny = only(spans, 'demo.Greeter/Deny', SpanKind.CLIENT)
    expect(deny.status).toEqual({ code: SpanStatusCode.ERROR, message: 'not you' })
    expect(deny.attributes).toMatchObject({
      'rpc.srpc.status_code': 'PERMISSION_DENIED',
      'error.type': 'PERMISSION_DENIED',
    })
    expect(deny.events.map((e: { name: string }) => e.name)).toEqual(['exception'])
    expect(only(spans, 'demo.Greeter/Crash', SpanKind.CLIENT).status.code).toBe(SpanStatusCode.ERROR)

    const remote = await serverSpans(2)
    const serverDeny = only(remote, 'demo.Greeter/Deny', SpanKind.SERVER)
    expect(serverDeny.attributes).toMatchObject({
      'rpc.srpc.status_code': 'PERMISSION_DENIED',
      'error.type': 'PERMISSION_DENIED',
    })
    // The caller's mistake is not the server's error (OpenTelemetry's gRPC rule).
    expect(serverDeny.status.code).toBe(SpanStatusCode.UNSET)
    const serverCrash = only(remote, 'demo.Greeter/Crash', SpanKind.SERVER)
    expect(serverCrash.status.code).toBe(SpanStatusCode.ERROR)
    expect(serverCrash.attributes['rpc.srpc.status_code']).toBe('INTERNAL')
    expect(serverCrash.parentSpanId).toBe(only(spans, 'demo.Greeter/Crash', SpanKind.CLIENT).spanId)
  })

  it('ends both spans of a stream the client cancels as CANCELLED, with the chunk counts', async () => {
    const pool = tracedPool()
    const chunks: string[] = []
    for await (const chunk of pool.callStream('/demo.Ticker/Tick', '', { timeout: 5000 })) {
      chunks.push(chunk.toString())
      if (chunks.length === 3) break
    }
    expect(chunks).toEqual(['tick 0', 'tick 1', 'tick 2'])
    const remote = await serverSpans(1)
    const client = only(clientSpans(), 'demo.Ticker/Tick', SpanKind.CLIENT)
    expect(client.attributes).toMatchObject({
      'rpc.srpc.status_code': 'CANCELLED',
      'rpc.srpc.kind': 'server-stream',
      'rpc.srpc.messages_sent': 1,
    })
    expect(client.attributes['rpc.srpc.messages_received']).toBeGreaterThanOrEqual(3)
    expect(client.status.code).toBe(SpanStatusCode.ERROR)
    const server = only(remote, 'demo.Ticker/Tick', SpanKind.SERVER)
    expect(server.parentSpanId).toBe(client.spanId)
    expect(server.attributes).toMatchObject({
      'rpc.srpc.status_code': 'CANCELLED',
      'rpc.srpc.kind': 'server-stream',
    })
    expect(server.attributes['rpc.srpc.messages_sent']).toBeGreaterThanOrEqual(3)
  })

  it('counts the messages of a session both ways', async () => {
    const pool = tracedPool()
    const session = await pool.createBidirectionalSession('/demo.Chat/Talk', { timeout: 5000 })
    await session.send('a')
    await session.send('b')
    expect((await session.receive())?.toString()).toBe('echo a')
    expect((await session.receive())?.toString()).toBe('echo b')
    await session.close()
    const remote = await serverSpans(1)
    const client = only(clientSpans(), 'demo.Chat/Talk', SpanKind.CLIENT)
    expect(client.attributes).toMatchObject({
      'rpc.srpc.status_code': 'OK',
      'rpc.srpc.kind': 'session',
      'rpc.srpc.messages_sent': 2,
      'rpc.srpc.messages_received': 2,
    })
    const server = only(remote, 'demo.Chat/Talk', SpanKind.SERVER)
    expect(server.parentSpanId).toBe(client.spanId)
    expect(server.attributes).toMatchObject({
      'rpc.srpc.status_code': 'OK',
      'rpc.srpc.kind': 'session',
      'rpc.srpc.messages_sent': 2,
      'rpc.srpc.messages_received': 2,
    })
  })
})

describe('metrics', () => {
  function point(points: Point[], name: string, attributes: Record<string, unknown>): Point | undefined {
    return points.find(
      (p) => p.name === name && Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
    )
  }

  it('records durations, sizes, messages per call, calls in flight and open connections on both ends', async () => {
    const pool = tracedPool()
    await pool.call('/demo.Greeter/Hello', 'grace', { timeout: 5000 })
    await serverSpans(1) // the server's call is over once its span ended
    const hello = { 'rpc.method': 'Hello', 'rpc.service': 'demo.Greeter', 'rpc.srpc.status_code': 'OK' }

    const local = (await plainMetrics(sdk.reader)) as Point[]
    const duration = point(local, 'rpc.client.duration', { ...hello, 'server.port': port })
    expect(duration?.unit).toBe('ms')
    expect(duration?.value.count).toBeGreaterThanOrEqual(1)
    const requestSize = point(local, 'rpc.client.request.size', hello)
    expect(requestSize?.unit).toBe('By')
    // 'ada' in the first test, 'grace' here.
    expect(requestSize?.value.sum).toBe(3 + 5)
    // Messages per call are measured for streams and sessions (a unary call is always one and one).
    expect(point(local, 'rpc.client.responses_per_rpc', hello)).toBeUndefined()
    expect(
      point(local, 'rpc.client.responses_per_rpc', { 'rpc.method': 'Tick' })?.value.sum,
    ).toBeGreaterThanOrEqual(3)
    expect(point(local, 'rpc.client.requests_per_rpc', { 'rpc.method': 'Talk' })?.value.sum).toBe(2)
    expect(point(local, 'srpc.client.active_calls', { 'rpc.method': 'Hello' })?.value).toBe(0)
    expect(point(local, 'srpc.connections.active', { 'srpc.side': 'client' })?.value).toBe(1)

    const remote = (await ask({ cmd: 'metrics' })).metrics
    expect(point(remote, 'rpc.server.duration', hello)?.value.count).toBe(2)
    expect(point(remote, 'rpc.server.request.size', hello)?.value.sum).toBe(8)
    const stream = point(remote, 'rpc.server.responses_per_rpc', { 'rpc.method': 'Tick' })
    expect(stream?.value.sum).toBeGreaterThanOrEqual(3)
    expect(point(remote, 'srpc.server.active_calls', { 'rpc.method': 'Tick' })?.value).toBe(0)
    expect(point(remote, 'srpc.connections.active', { 'srpc.side': 'server' })?.value).toBe(1)
  })
})
