export type {
  CallEndMessage,
  CallErrorMessage,
  CallInfo,
  CallKind,
  CallNext,
  CallResult,
  CallSide,
  CallStartMessage,
  CallStats,
  ConnectionMessage,
  Interceptor,
  Logger,
  Session,
} from '@srpc/core'
export {
  type ConnectTlsOptions,
  connectTls,
  DIAGNOSTICS_CHANNELS,
  type MemoryTransportOptions,
  memoryTransportPair,
  type TlsTarget,
  type Transport,
  type TransportPeer,
} from '@srpc/core'
export { Code, RpcError } from '@srpc/protocol'
export { ClientSession, type SessionOptions } from './client-session'
export { ClientStream } from './client-stream'
export type { ConnectionState } from './connection'
export type { Connector, ConnectorTarget } from './connector'
export {
  type BackoffOptions,
  type Balancing,
  DEFAULT_BACKOFF,
  DEFAULT_BALANCING,
  DEFAULT_CALL_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_HEALTH_CHECK,
  DEFAULT_MAX_QUEUED,
  DEFAULT_POOL_SIZE,
  DEFAULT_RESOLVE_INTERVAL,
  DEFAULT_RETRY_BACKOFF,
  DEFAULT_RETRY_CODES,
  DEFAULT_WAIT_FOR_READY,
  type HealthCheckOptions,
  type Lookup,
  MAX_RETRY_ATTEMPTS,
  type PoolOptions,
  type RetryPolicy,
} from './options'
export {
  type CallOptions,
  type ConnectionStats,
  Pool,
  type PoolEvents,
  type PoolState,
  type SlotState,
} from './pool'
export { addressOf, type ResolvedAddress, type Resolver } from './resolver'
export {
  type ResolveSrv,
  type SrvAddress,
  SrvResolver,
  type SrvResolverOptions,
  srvResolver,
} from './srv-resolver'
