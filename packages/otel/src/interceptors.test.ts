import { SpanKind } from '@opentelemetry/api'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { CallInfo, CallResult } from '@srpc/core'
import { describe, expect, it } from 'vitest'
import { codeOf, routeName } from './attributes'
import { otelClient, otelServer } from './interceptors'

class CollectingReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

function sdk() {
  const spans = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  const reader = new CollectingReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  return { spans, tracerProvider, reader, meterProvider }
}

/** A finished unary call as the server's interceptors see it. */
function serverCall(route: string): CallInfo {
  return {
    side: 'server',
    route,
    kind: 'unary',
    metadata: {},
    deadline: undefined,
    signal: undefined,
    payload: Buffer.from('abc'),
    peer: {
      transport: 'memory',
      address: undefined,
      port: undefined,
      authorized: false,
      certificateSubject: undefined,
    },
    stats: { messagesSent: 1, messagesReceived: 1, durationMs: 2 },
  }
}

const ok = async (): Promise<CallResult> => ({
  code: 'OK',
  value: Buffer.from('reply'),
  messagesSent: 1,
  messagesReceived: 1,
  durationMs: 2,
})

describe('routeName', () => {
  it('splits a route at its last slash into service and method, and names flat routes by their method', () => {
    expect(routeName('/shop.v1.Cart/Add')).toEqual({
      service: 'shop.v1.Cart',
      method: 'Add',
      spanName: 'shop.v1.Cart/Add',
    })
    expect(routeName('/a/b/c')).toEqual({ service: 'a/b', method: 'c', spanName: 'a/b/c' })
    expect(routeName('/echo')).toEqual({ service: undefined, method: 'echo', spanName: 'echo' })
  })
})

describe('codeOf', () => {
  it('keeps codes of the closed set and calls anything else UNKNOWN', () => {
    expect(codeOf({ code: 'NOT_FOUND' })).toBe('NOT_FOUND')
    expect(codeOf({ code: 'MADE_UP' })).toBe('UNKNOWN')
    expect(codeOf(new Error('plain'))).toBe('UNKNOWN')
    expect(codeOf(undefined)).toBe('UNKNOWN')
  })
})

describe('metric cardinality', () => {
  it('measures the first 1,024 routes apart and every later one as _OTHER, while spans keep their names', async () => {
    const { spans, tracerProvider, reader, meterProvider } = sdk()
    const chain = otelServer({ tracerProvider, meterProvider })(ok)
    for (let i = 0; i < 1030; i++) await chain(serverCall(`/made.up/r${i}`))
    const { resourceMetrics } = await reader.collect()
    const duration = resourceMetrics.scopeMetrics[0].metrics.find(
      (m) => m.descriptor.name === 'rpc.server.duration',
    )!
    const methods = duration.dataPoints.map((p) => p.attributes['rpc.method'])
    expect(methods).toHaveLength(1025)
    const other = duration.dataPoints.find((p) => p.attributes['rpc.method'] === '_OTHER')!
    expect((other.value as { count: number }).count).toBe(6)
    expect(spans.getFinishedSpans().at(-1)?.name).toBe('made.up/r1029')
    expect(spans.getFinishedSpans().at(-1)?.kind).toBe(SpanKind.SERVER)
  })

  it('reports calls in flight per route, back to zero once they end', async () => {
    const { tracerProvider, reader, meterProvider } = sdk()
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const chain = otelClient({ tracerProvider, meterProvider })(async () => {
      await held
      return ok()
    })
    const call = { ...serverCall('/svc/Slow'), side: 'client', peer: undefined } as CallInfo
    const running = [chain(call), chain({ ...call, metadata: {} })]
    const active = async () => {
      const { resourceMetrics } = await reader.collect()
      const metric = resourceMetrics.scopeMetrics[0].metrics.find(
        (m) => m.descriptor.name === 'srpc.client.active_calls',
      )
      return metric?.dataPoints.find((p) => p.attributes['rpc.method'] === 'Slow')?.value
    }
    expect(await active()).toBe(2)
    release()
    await Promise.all(running)
    expect(await active()).toBe(0)
  })
})
