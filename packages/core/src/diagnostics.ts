import { channel } from 'node:diagnostics_channel'
import type { CallInfo, CallResult, Interceptor, PeerInfo } from './interceptor'

/**
 * Channels an APM subscribes to (`diagnostics_channel.subscribe(name, fn)`) to observe srpc with
 * no code change, as undici publishes `undici:request:*`. Messages are built only while someone
 * listens: with no subscriber a call pays one `hasSubscribers` check.
 */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  /** `{ call: CallInfo }`: a call, stream or session starts (before the interceptors). */
  callStart: 'srpc:call:start',
  /** `{ call: CallInfo, result: CallResult }`: it ended OK (the same `call` object as at start). */
  callEnd: 'srpc:call:end',
  /** `{ call: CallInfo, error: RpcError }`: it ended with an error (CANCELLED, DEADLINE_EXCEEDED…). */
  callError: 'srpc:call:error',
  /** `{ side, connectionId, peer }`: a connection is up (after the TLS handshake). */
  connectionOpen: 'srpc:connection:open',
  /** `{ side, connectionId, peer, error }`: it closed; `error` is set when it did not close cleanly. */
  connectionClose: 'srpc:connection:close',
} as const)

export interface CallStartMessage {
  readonly call: CallInfo
}
export interface CallEndMessage {
  readonly call: CallInfo
  readonly result: CallResult
}
export interface CallErrorMessage {
  readonly call: CallInfo
  readonly error: Error
}
/** Where a connection goes (client) or comes from (server). */
export interface ConnectionPeer {
  readonly transport: string
  readonly address?: string | undefined
  readonly port?: number | undefined
}
export interface ConnectionMessage {
  readonly side: 'client' | 'server'
  /** Unique in this process, for as long as it runs; the same number on open and close. */
  readonly connectionId: number
  readonly peer: ConnectionPeer | PeerInfo
  /** On close only: why it did not close cleanly. */
  readonly error?: Error | undefined
}

const callStart = channel(DIAGNOSTICS_CHANNELS.callStart)
const callEnd = channel(DIAGNOSTICS_CHANNELS.callEnd)
const callError = channel(DIAGNOSTICS_CHANNELS.callError)
const connectionOpen = channel(DIAGNOSTICS_CHANNELS.connectionOpen)
const connectionClose = channel(DIAGNOSTICS_CHANNELS.connectionClose)

let lastConnectionId = 0

/** A process-wide connection id, for logs and the connection channels. */
export function nextConnectionId(): number {
  return ++lastConnectionId
}

/** True while anyone listens to a call channel: then calls go through `diagnosticsInterceptor`. */
export function callsObserved(): boolean {
  return callStart.hasSubscribers || callEnd.hasSubscribers || callError.hasSubscribers
}

/**
 * Publishes a call's start and end. The pool and the server put it outermost, and only while
 * `callsObserved()`: a process nobody observes builds no message.
 */
export const diagnosticsInterceptor: Interceptor = (next) => (call) => {
  if (callStart.hasSubscribers) callStart.publish({ call } satisfies CallStartMessage)
  return next(call).then(
    (result) => {
      if (callEnd.hasSubscribers) callEnd.publish({ call, result } satisfies CallEndMessage)
      return result
    },
    (error: Error) => {
      if (callError.hasSubscribers) callError.publish({ call, error } satisfies CallErrorMessage)
      throw error
    },
  )
}

/** `interceptors` with the diagnostics publisher first while calls are observed; as given otherwise. */
export function observedInterceptors(interceptors: readonly Interceptor[]): readonly Interceptor[] {
  if (!callsObserved()) return interceptors
  let cached = withPublisher.get(interceptors)
  if (cached === undefined) {
    cached = Object.freeze([diagnosticsInterceptor, ...interceptors])
    withPublisher.set(interceptors, cached)
  }
  return cached
}

const withPublisher = new WeakMap<readonly Interceptor[], readonly Interceptor[]>()

export function publishConnectionOpen(
  side: 'client' | 'server',
  connectionId: number,
  peer: ConnectionPeer,
): void {
  if (connectionOpen.hasSubscribers)
    connectionOpen.publish({ side, connectionId, peer } satisfies ConnectionMessage)
}

export function publishConnectionClose(
  side: 'client' | 'server',
  connectionId: number,
  peer: ConnectionPeer,
  error: Error | undefined,
): void {
  if (connectionClose.hasSubscribers)
    connectionClose.publish({ side, connectionId, peer, error } satisfies ConnectionMessage)
}
