import { subscribe } from 'node:diagnostics_channel'
import {
  type Attributes,
  type Histogram,
  type Meter,
  type ObservableUpDownCounter,
  ValueType,
} from '@opentelemetry/api'
import { type ConnectionMessage, DIAGNOSTICS_CHANNELS } from '@srpc/core'

/** The instruments of one end (`rpc.client.*` or `rpc.server.*`), per OpenTelemetry's RPC conventions. */
export interface RpcInstruments {
  /** `rpc.{side}.duration`, ms: from the start of the call to its end (a stream's last chunk, a session's close). */
  readonly duration: Histogram
  /** `rpc.{side}.request.size`, bytes: the request payload (unary and server-stream calls). */
  readonly requestSize: Histogram
  /** `rpc.{side}.response.size`, bytes: the reply of a unary call. */
  readonly responseSize: Histogram
  /** `rpc.{side}.requests_per_rpc`: messages from the client (1 for a request, any count for a session). */
  readonly requestsPerRpc: Histogram
  /** `rpc.{side}.responses_per_rpc`: messages from the server (chunks of a stream, messages of a session). */
  readonly responsesPerRpc: Histogram
  /** `srpc.{side}.active_calls`: calls, streams and sessions in flight (counted by us, read at collection). */
  readonly activeCalls: ObservableUpDownCounter
}

export function rpcInstruments(meter: Meter, side: 'client' | 'server'): RpcInstruments {
  const count = (what: string, description: string) =>
    meter.createHistogram(`rpc.${side}.${what}`, { description, unit: '{count}', valueType: ValueType.INT })
  return {
    duration: meter.createHistogram(`rpc.${side}.duration`, {
      description: `Duration of ${side === 'client' ? 'outbound' : 'inbound'} srpc calls, streams and sessions`,
      unit: 'ms',
    }),
    requestSize: meter.createHistogram(`rpc.${side}.request.size`, {
      description: 'Size of the request payload',
      unit: 'By',
      valueType: ValueType.INT,
    }),
    responseSize: meter.createHistogram(`rpc.${side}.response.size`, {
      description: 'Size of the reply of a unary call',
      unit: 'By',
      valueType: ValueType.INT,
    }),
    requestsPerRpc: count('requests_per_rpc', 'Messages the client sent per call'),
    responsesPerRpc: count('responses_per_rpc', 'Messages the server sent per call'),
    activeCalls: meter.createObservableUpDownCounter(`srpc.${side}.active_calls`, {
      description: 'Calls, streams and sessions in flight',
      unit: '{call}',
      valueType: ValueType.INT,
    }),
  }
}

/** Meters that already count connections: one subscription per meter, however many interceptors share it. */
const counting = new WeakSet<Meter>()

/**
 * `srpc.connections.active` (attribute `srpc.side`: client or server): open connections of every
 * pool and server in this process, counted from the `srpc:connection:*` diagnostics channels.
 */
export function countConnections(meter: Meter): void {
  if (counting.has(meter)) return
  counting.add(meter)
  const active = meter.createUpDownCounter('srpc.connections.active', {
    description: 'Open srpc connections',
    unit: '{connection}',
    valueType: ValueType.INT,
  })
  const sides: Record<string, Attributes> = {
    client: { 'rpc.system': 'srpc', 'srpc.side': 'client' },
    server: { 'rpc.system': 'srpc', 'srpc.side': 'server' },
  }
  subscribe(DIAGNOSTICS_CHANNELS.connectionOpen, (message) => {
    active.add(1, sides[(message as ConnectionMessage).side])
  })
  subscribe(DIAGNOSTICS_CHANNELS.connectionClose, (message) => {
    active.add(-1, sides[(message as ConnectionMessage).side])
  })
}
