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
  DIAGNOSTICS_CHANNELS,
  type MemoryTransportOptions,
  memoryTransportPair,
  type Transport,
  type TransportPeer,
} from '@srpc/core'
export { Code, RpcError } from '@srpc/protocol'
export { runCluster } from './cluster'
export type {
  ClusterEvents,
  ClusterHealth,
  ClusterWorkerInfo,
  ClusterWorkerState,
  ClusterWorkerStats,
} from './cluster-events'
export {
  type ClusterOptions,
  DEFAULT_CLUSTER_MAX_RESTARTS,
  DEFAULT_CLUSTER_RESTART_BACKOFF,
  DEFAULT_CLUSTER_RESTART_WINDOW,
  DEFAULT_CLUSTER_START_TIMEOUT,
} from './cluster-options'
export type { ClusterPrimary } from './cluster-primary'
export type { ClusterWorker } from './cluster-worker'
export { ConcurrencyLimiter, type Job, WorkerPool } from './concurrency-limiter'
export { Context, type PeerInfo, type ServerStream } from './context'
export {
  HEALTH_CHECK_ROUTE,
  HEALTH_WATCH_ROUTE,
  HealthService,
  type ServingStatus,
  type WatchedStatus,
} from './health'
export type { Middleware } from './middleware'
export { type Handler, type HandlerResult, Mux, type RouteEntry, type RouteInfo } from './mux'
export {
  DEFAULT_MAX_QUEUE,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_SHUTDOWN_TIMEOUT,
  DEFAULT_WORKERS,
  type ServerOptions,
} from './options'
export { REFLECTION_LIST_ROUTE } from './reflection'
export { Server, type ServerEvents, type ServerState } from './server'
export {
  DEFAULT_WEBSOCKET_PATH,
  type OriginPolicy,
  type WebSocketListenOptions,
} from './websocket-listener'
