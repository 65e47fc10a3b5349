// Traces, metrics, logs, health and reflection of srpc, printed to the console: a server and a
// pool in one process, each with its one-line instrumentation. `node apps/example-otel/dist/main.js`
// (the demo runs it). Exits 0 only if the server span came out as the child of the client span.
import { context, metrics, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  ConsoleMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  ConsoleSpanExporter,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { Pool } from '@srpc/client'
import { otelClient, otelServer } from '@srpc/otel'
import { Code, RpcError, Server } from '@srpc/server'
import { selfSigned } from '@srpc/tlsutil'
import pino from 'pino'

// --- the OpenTelemetry SDK (NodeSDK from @opentelemetry/sdk-node does all of this in one call) ---
const kept = new InMemorySpanExporter() // to check the result below; the console one is for you
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter()), new SimpleSpanProcessor(kept)],
})
const reader = new PeriodicExportingMetricReader({
  exporter: new ConsoleMetricExporter(),
  exportIntervalMillis: 60_000, // exported once, at shutdown, for the example
})
const meterProvider = new MeterProvider({ readers: [reader] })
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
propagation.setGlobalPropagator(new W3CTraceContextPropagator())
trace.setGlobalTracerProvider(tracerProvider)
metrics.setGlobalMeterProvider(meterProvider)

async function main(): Promise<number> {
  const { serverOptions, clientOptions } = await selfSigned(['127.0.0.1'])
  const logger = pino({ level: 'info' })

  // --- the server: one line for traces and metrics, one for logs ---
  const server = new Server({ tls: serverOptions, interceptors: [otelServer()], logger, reflection: true })
  server.handle('/shop.Cart/Add', (ctx) => JSON.stringify({ added: ctx.payload.toString() }), {
    kind: 'unary',
    codec: 'json',
    input: { type: 'string' },
    output: { type: 'object', properties: { added: { type: 'string' } } },
  })
  server.handle('/shop.Cart/Remove', () => {
    throw new RpcError(Code.NOT_FOUND, 'no such item')
  })
  server.handle('/shop.Cart/Watch', async (ctx) => {
    const stream = ctx.stream()
    for (let i = 1; i <= 3; i++) await stream.writeChunk(`update ${i}`, i === 3)
  })
  const { port } = await server.listen()

  // --- the client ---
  const pool = new Pool({
    address: `127.0.0.1:${port}`,
    tls: clientOptions,
    size: 1,
    logger,
    interceptors: [otelClient({ serverAddress: '127.0.0.1', serverPort: port })],
  })

  const tracer = trace.getTracer('example-otel')
  await tracer.startActiveSpan('checkout', async (root) => {
    console.log('reply:', (await pool.call('/shop.Cart/Add', 'book', { timeout: 5000 })).toString())
    await pool.call('/shop.Cart/Remove', 'pen', { timeout: 5000 }).catch((err: RpcError) => {
      console.log('expected failure:', err.code)
    })
    for await (const chunk of pool.callStream('/shop.Cart/Watch', '', { timeout: 5000 }))
      console.log('chunk:', chunk.toString())
    root.end()
  })

  // Health, as a Kubernetes gRPC-style probe would ask, and the route list a CLI would read.
  console.log(
    'health:',
    (await pool.call('/srpc.health/check', '{"service":""}', { timeout: 5000 })).toString(),
  )
  const { routes } = JSON.parse((await pool.call('/srpc.reflection/list', '', { timeout: 5000 })).toString())
  console.log(
    'routes:',
    routes.map((r: { route: string; kind?: string }) => `${r.route} (${r.kind ?? '?'})`).join(', '),
  )

  await pool.close()
  await server.shutdown({ timeout: 2000 })
  // The server span must be the child of the client span: trace context crossed in the metadata.
  // (Read before the provider's shutdown, which empties the in-memory exporter.)
  const spans = kept.getFinishedSpans()
  const client = spans.find((s) => s.name === 'shop.Cart/Add' && s.kind === 2)
  const served = spans.find((s) => s.name === 'shop.Cart/Add' && s.kind === 1)
  const linked = client !== undefined && served?.parentSpanContext?.spanId === client.spanContext().spanId
  await meterProvider.shutdown() // prints the metrics
  await tracerProvider.shutdown()
  console.log(linked ? '✓ server span is the child of the client span' : '✗ spans are not linked')
  return linked ? 0 : 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error(err)
    process.exitCode = 1
  },
)
