import { subscribe } from 'node:diagnostics_channel'
import type { Interceptor } from '@srpc/client'

/**
 * What the srpc target observes, from SRPC_BENCH_OBSERVE (set by observe-main.ts, inherited by the
 * cell's processes): nothing (unset), `diag` (a subscriber on every srpc diagnostics channel) or
 * `otel` (the @srpc/otel interceptors with a real SDK whose exporters drop everything). Loaded
 * only when set, so a plain srpc cell imports nothing more than before.
 */
export type Observe = 'diag' | 'otel'

/** What the diagnostics subscriber saw (kept so its work is not optimised away). */
export const observed = { calls: 0, ms: 0 }

export function observeFromEnv(): Observe | undefined {
  const value = process.env.SRPC_BENCH_OBSERVE
  if (value === undefined || value === '' || value === 'plain') return undefined
  if (value !== 'diag' && value !== 'otel') throw new Error(`SRPC_BENCH_OBSERVE: unknown value ${value}`)
  return value
}

/** Sets up the observer of this process and returns the interceptors its Pool or Server should get. */
export async function observeInterceptors(
  observe: Observe,
  side: 'client' | 'server',
): Promise<Interceptor[]> {
  if (observe === 'diag') {
    const { DIAGNOSTICS_CHANNELS } = await import('@srpc/server')
    // As an APM would: keep a little per-call state, so the messages are really built and read.
    const started = new WeakMap<object, number>()
    subscribe(DIAGNOSTICS_CHANNELS.callStart, (m) =>
      started.set((m as { call: object }).call, performance.now()),
    )
    const end = (m: unknown) => {
      const at = started.get((m as { call: object }).call)
      if (at === undefined) return
      observed.calls++
      observed.ms += performance.now() - at
    }
    subscribe(DIAGNOSTICS_CHANNELS.callEnd, end)
    subscribe(DIAGNOSTICS_CHANNELS.callError, end)
    subscribe(DIAGNOSTICS_CHANNELS.connectionOpen, () => {})
    subscribe(DIAGNOSTICS_CHANNELS.connectionClose, () => {})
    return []
  }
  const { context, metrics, propagation, trace } = await import('@opentelemetry/api')
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks')
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core')
  const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics')
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
  const { otelClient, otelServer } = await import('@srpc/otel')
  // A production-shaped SDK (batching, every span sampled, metrics aggregated) whose exporter drops the batches.
  const dropSpans = {
    export: (_spans: unknown, done: (result: { code: 0 }) => void) => done({ code: 0 }),
    shutdown: async () => {},
  }
  class NeverExported extends MetricReader {
    async onForceFlush() {}
    async onShutdown() {}
  }
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropSpans)] }),
  )
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new NeverExported()] }))
  return [side === 'client' ? otelClient() : otelServer()]
}
