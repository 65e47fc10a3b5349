export { Code, type Metadata, RpcError } from '@srpc/protocol'
export {
  type BackoffOptions,
  type CallOptions,
  DEFAULT_BACKOFF,
  DEFAULT_CALL_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_HELLO_TIMEOUT,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_KEEPALIVE,
  DEFAULT_SESSION_CLOSE_TIMEOUT,
  type SessionOptions,
  type WebClientOptions,
} from './options'
export { type StateChange, WebClient, type WebClientState } from './web-client'
export { WebSession } from './web-session'
export { WebStream } from './web-stream'
export type { WebSocketConstructor, WebSocketLike } from './websocket-link'
