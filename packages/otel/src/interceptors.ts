import {
  type Attributes,
  type Context,
  context,
  type MeterProvider,
  metrics,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import type { CallInfo, CallResult, Interceptor } from '@srpc/core'
import { callAttributes, codeOf, type RouteName, routeName, SERVER_FAULTS } from './attributes'
import { countConnections, type RpcInstruments, rpcInstruments } from './metrics'
import { metadataGetter, metadataSetter } from './propagation'

/** The name and version spans and metrics are reported under (the instrumentation scope). */
export const INSTRUMENTATION_NAME = '@srpc/otel'
/** Routes measured apart; calls to more (made-up routes) are measured together as `_OTHER`. */
const MAX_ROUTES = 1024
declare const __VERSION__: string | undefined
const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : undefined

export interface OtelOptions {
  /** Where spans go; the global one (`trace.setGlobalTracerProvider`, NodeSDK) by default. */
  tracerProvider?: TracerProvider
  /** Where measurements go; the global one by default. */
  meterProvider?: MeterProvider
  /**
   * How trace context travels in call metadata; the global propagator by default (NodeSDK
   * registers W3C `traceparent`/`tracestate`; with a bare SDK, register `W3CTraceContextPropagator`).
   */
  propagator?: TextMapPropagator
  /** Attributes added to every span and measurement of this end (`service.namespace`, …). */
  attributes?: Attributes
}

export interface OtelClientOptions extends OtelOptions {
  /**
   * `server.address` and `server.port` of the client's spans and measurements: the pool's
   * address. Interceptors run before the pool picks a connection, so they cannot know it.
   */
  serverAddress?: string
  serverPort?: number
}

/** What the measurements of one route share: built once per route, counted without the SDK. */
interface Measured {
  /** Of the call (rpc.system, rpc.service, rpc.method, …). */
  readonly attributes: Attributes
  /** Of its measurements, per outcome code (at most one per code: the set is closed). */
  readonly outcomes: Map<string, Attributes>
  /** Calls in flight, reported by the observable `srpc.*.active_calls`. */
  active: number
}

/** A route as spans and measurements name it. */
interface RouteEntry {
  readonly name: RouteName
  /** The span's attributes: the route's own, even past the metric cap. */
  readonly attributes: Attributes
  readonly measured: Measured
}

interface Instrumentation {
  /** The route's name and attributes, built once per route (bounded: see `routeName`). */
  route(route: string): RouteEntry
  tracer: Tracer
  instruments: RpcInstruments
  propagator: TextMapPropagator | undefined
  attributes: Attributes | undefined
}

function instrument(options: OtelOptions, side: 'client' | 'server', extra: Attributes): Instrumentation {
  const tracerProvider = options.tracerProvider ?? trace.getTracerProvider()
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME, VERSION)
  countConnections(meter)
  const attributes = { ...options.attributes, ...extra }
  const shared = Object.keys(attributes).length > 0 ? attributes : undefined
  const routes = new Map<string, RouteEntry>()
  // Past MAX_ROUTES (a client calling made-up routes), measurements share one `_OTHER` series, so
  // nobody can grow the metrics' cardinality without bound.
  const other: Measured = {
    attributes: callAttributes({ service: undefined, method: '_OTHER', spanName: '_OTHER' }, shared),
    outcomes: new Map(),
    active: 0,
  }
  const instruments = rpcInstruments(meter, side)
  instruments.activeCalls.addCallback((result) => {
    for (const entry of routes.values()) result.observe(entry.measured.active, entry.measured.attributes)
    if (routes.size >= MAX_ROUTES) result.observe(other.active, other.attributes)
  })
  return {
    route(route) {
      let entry = routes.get(route)
      if (entry === undefined) {
        const name = routeName(route)
        const attributes = callAttributes(name, shared)
        if (routes.size < MAX_ROUTES) {
          entry = { name, attributes, measured: { attributes, outcomes: new Map(), active: 0 } }
          routes.set(route, entry)
        } else entry = { name, attributes, measured: other }
      }
      return entry
    },
    tracer: tracerProvider.getTracer(INSTRUMENTATION_NAME, VERSION),
    instruments,
    propagator: options.propagator,
    attributes: shared,
  }
}

/**
 * Traces and measures every call, stream and session of a pool: a CLIENT span per call (named
 * `service/method` from the route), whose context travels to the server in the call's metadata,
 * and the `rpc.client.*` metrics. `new Pool({ address, tls, interceptors: [otelClient()] })`.
 */
export function otelClient(options: OtelClientOptions = {}): Interceptor {
  const extra: Attributes = {}
  if (options.serverAddress !== undefined) extra['server.address'] = options.serverAddress
  if (options.serverPort !== undefined) extra['server.port'] = options.serverPort
  const otel = instrument(options, 'client', extra)
  return (next) => (call) => {
    const route = otel.route(call.route)
    const { name, attributes } = route
    const parent = context.active()
    const span = otel.tracer.startSpan(name.spanName, { kind: SpanKind.CLIENT, attributes }, parent)
    const active = trace.setSpan(parent, span)
    // Outgoing metadata: the server's span becomes this one's child.
    inject(otel.propagator, active, call.metadata as Record<string, string>)
    route.measured.active++
    return finish(otel, span, call, route, context.with(active, next, undefined, call), 'client')
  }
}

/**
 * Traces and measures every call, stream and session a server serves: a SERVER span per call,
 * the child of the client's when the call's metadata carries trace context, active while the
 * interceptors after this one and the handler run; and the `rpc.server.*` metrics.
 * `new Server({ tls, interceptors: [otelServer()] })`.
 */
export function otelServer(options: OtelOptions = {}): Interceptor {
  const otel = instrument(options, 'server', {})
  return (next) => (call) => {
    const route = otel.route(call.route)
    const { name, attributes } = route
    const parent = extract(otel.propagator, context.active(), call.metadata)
    const spanAttributes: Attributes = { ...attributes }
    const peer = call.peer
    if (peer?.address !== undefined) spanAttributes['network.peer.address'] = peer.address
    if (peer?.port !== undefined) spanAttributes['network.peer.port'] = peer.port
    const span = otel.tracer.startSpan(
      name.spanName,
      { kind: SpanKind.SERVER, attributes: spanAttributes },
      parent,
    )
    route.measured.active++
    const active = trace.setSpan(parent, span)
    return finish(otel, span, call, route, context.with(active, next, undefined, call), 'server')
  }
}

function inject(
  propagator: TextMapPropagator | undefined,
  ctx: Context,
  carrier: Record<string, string>,
): void {
  if (propagator) propagator.inject(ctx, carrier, metadataSetter)
  else propagation.inject(ctx, carrier, metadataSetter)
}

function extract(
  propagator: TextMapPropagator | undefined,
  ctx: Context,
  carrier: Readonly<Record<string, string>>,
): Context {
  return propagator
    ? propagator.extract(ctx, carrier, metadataGetter)
    : propagation.extract(ctx, carrier, metadataGetter)
}

/** Ends the span and records the measurements once the call settled, whatever its outcome. */
function finish(
  otel: Instrumentation,
  span: Span,
  call: CallInfo,
  route: RouteEntry,
  settled: Promise<CallResult>,
  side: 'client' | 'server',
): Promise<CallResult> {
  return settled.then(
    (result) => {
      end(otel, span, call, route, 'OK', result.value, undefined, side)
      return result
    },
    (error: unknown) => {
      end(otel, span, call, route, codeOf(error), undefined, error, side)
      throw error
    },
  )
}

function end(
  otel: Instrumentation,
  span: Span,
  call: CallInfo,
  route: RouteEntry,
  code: string,
  reply: Buffer | undefined,
  error: unknown,
  side: 'client' | 'server',
): void {
  const { stats, kind } = call
  // On the server a request becomes a stream only in its handler: the kind is final now.
  const fromClient = side === 'client' ? stats.messagesSent : stats.messagesReceived
  const fromServer = side === 'client' ? stats.messagesReceived : stats.messagesSent
  span.setAttributes({
    'rpc.srpc.status_code': code,
    'rpc.srpc.kind': kind,
    'rpc.srpc.messages_sent': stats.messagesSent,
    'rpc.srpc.messages_received': stats.messagesReceived,
  })
  if (error !== undefined) {
    span.setAttribute('error.type', code)
    if (side === 'client' || SERVER_FAULTS.has(code)) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message })
      span.recordException(error instanceof Error ? error : String(error))
    }
  }
  span.end()
  const series = route.measured
  series.active--
  let measured = series.outcomes.get(code)
  if (measured === undefined) {
    const attributes: Attributes = { ...series.attributes, 'rpc.srpc.status_code': code }
    if (code !== 'OK') attributes['error.type'] = code
    measured = Object.freeze(attributes)
    series.outcomes.set(code, measured)
  }
  const instruments = otel.instruments
  instruments.duration.record(stats.durationMs, measured)
  if (kind !== 'session') instruments.requestSize.record(call.payload.length, measured)
  if (reply !== undefined) instruments.responseSize.record(reply.length, measured)
  // Messages per call say something for streams and sessions; a unary call is always one and one.
  if (kind !== 'unary') {
    instruments.requestsPerRpc.record(fromClient, measured)
    instruments.responsesPerRpc.record(fromServer, measured)
  }
}
