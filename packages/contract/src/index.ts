export type { Client, ClientMethod, ClientOptions, TypedStream } from './client'
export { createClient } from './client'
export type { Codec } from './codec'
export { bytes } from './codecs/bytes'
export { json } from './codecs/json'
export { msgpack } from './codecs/msgpack'
export { protobuf } from './codecs/protobuf'
export {
  type Contract,
  contract,
  type Method,
  type MethodKind,
  type MethodOptions,
  type Methods,
  routeOf,
  serverStream,
  session,
  unary,
} from './contract'
export {
  type HandlerFor,
  type Implementation,
  type ImplementOptions,
  implement,
  type ServerStreamHandler,
  type SessionHandler,
  type UnaryHandler,
} from './implement'
export type {
  RpcCallOptions,
  RpcClientLike,
  RpcSession,
  RpcSessionOptions,
  RpcStream,
} from './rpc-client'
export type { HandlerContext, RouteDescription, RpcServerLike } from './rpc-server'
export type { InputOf, Issue, OutputOf, Schema } from './schema'
export { type ServerSession, TypedClientSession } from './typed-session'
