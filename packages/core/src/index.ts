export { allocBuffer, asBuffer, type Frame, payloadBytes, toBuffer } from './buffer'
export { callReceiver, callSender } from './call-halves'
export type { CallHost, PeerCall } from './call-host'
export { CallSession, type SessionSource } from './call-session'
export { type CallPhase, CallState } from './call-state'
export { CallStream, type StreamSource } from './call-stream'
export {
  ASYNC_DEFLATE_MIN,
  ASYNC_INFLATE_MIN,
  type CompressionMode,
  type CompressionOptions,
  Compressor,
  DEFAULT_COMPRESSION_LEVEL,
  DEFAULT_COMPRESSION_THRESHOLD,
  decompress,
  decompressAsync,
  negotiateCodec,
  type ResolvedCompressionOptions,
  resolveCompressionOptions,
  SUPPORTED_CODECS,
} from './compression'
export {
  CompressionGovernor,
  eventLoopProbe,
  type GovernorProbe,
  type GovernorState,
} from './compression-governor'
export { type Deadline, DeadlineScheduler, deadlines } from './deadline-scheduler'
export {
  type CallEndMessage,
  type CallErrorMessage,
  type CallStartMessage,
  type ConnectionMessage,
  type ConnectionPeer,
  callsObserved,
  DIAGNOSTICS_CHANNELS,
  diagnosticsInterceptor,
  nextConnectionId,
  observedInterceptors,
  publishConnectionClose,
  publishConnectionOpen,
} from './diagnostics'
export {
  type Agreement,
  ALL_FEATURES,
  announce,
  answer,
  type ExtensionSettings,
  Extensions,
  type Feature,
} from './extensions'
export {
  FrameConnection,
  type FrameConnectionHandlers,
  type FrameConnectionOptions,
  type FrameConnectionState,
} from './frame-connection'
export {
  applyInterceptors,
  type CallInfo,
  type CallKind,
  type CallNext,
  type CallResult,
  type CallSide,
  type CallStats,
  type Interceptor,
  interceptorsOption,
  NO_INTERCEPTORS,
  newCallStats,
  okResult,
  type PeerInfo,
  runChain,
} from './interceptor'
export { errorFields, type LogFn, type Logger, loggerOption, SILENT_LOGGER } from './logger'
export {
  DEFAULT_MEMORY_HIGH_WATER_MARK,
  type MemoryTransportOptions,
  memoryTransportPair,
} from './memory-transport'
export { MessageQueue, type MessageQueueOptions } from './message-queue'
export {
  type KeepaliveOptions,
  type PeerOptions,
  parseAddress,
  type ResolvedPeerOptions,
  resolveKeepalive,
  resolvePeerOptions,
} from './options'
export {
  callError,
  PeerConnection,
  type PeerConnectionOptions,
  type PeerConnectionState,
  type PeerRole,
  type PeerSide,
} from './peer-connection'
export { fromPlatformError } from './platform-error'
export type { Session } from './session'
export { DEFAULT_STREAM_HIGH_WATER_MARK, StreamReceiver, type StreamReceiverHooks } from './stream-receiver'
export { rejected, type SenderOutput, StreamSender } from './stream-sender'
export {
  type ConnectTlsOptions,
  connectTls,
  type TlsTarget,
  tlsTransport,
  withSharedContext,
} from './tls-transport'
export type {
  Transport,
  TransportHandlers,
  TransportPeer,
  TransportState,
} from './transport'
