export { type RouteName, RPC_SYSTEM, routeName } from './attributes'
export {
  INSTRUMENTATION_NAME,
  type OtelClientOptions,
  type OtelOptions,
  otelClient,
  otelServer,
} from './interceptors'
