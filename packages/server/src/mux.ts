import type { CallKind } from '@srpc/core'
import { Code, checkRoute, RpcError } from '@srpc/protocol'
import type { Context } from './context'
import { guardKind } from './route-kind'

/** What a handler may return: a reply for a request (when it did not call ctx.reply), or nothing. */
export type HandlerResult = undefined | Uint8Array | string
// biome-ignore lint/suspicious/noConfusingVoidType: handlers that return nothing are typed `void` by TypeScript
export type Handler = (ctx: Context) => HandlerResult | void | Promise<HandlerResult | void>

/**
 * What a registration says about its route, for reflection and for checking calls: optional for
 * routes written by hand, filled in by `@srpc/contract`.
 */
export interface RouteInfo {
  /** The kind of call the route serves; a call of another kind fails FAILED_PRECONDITION. */
  readonly kind?: CallKind
  /** JSON Schema of the request (or of each client message of a session), when known. */
  readonly input?: Record<string, unknown>
  /** JSON Schema of the reply (or of each chunk or server message), when known. */
  readonly output?: Record<string, unknown>
  /** Name of the codec that encodes the payloads (`json`, `msgpack`, …), when known. */
  readonly codec?: string
  /** One line for people reading a route list. */
  readonly description?: string
}

/** One registered route and what it said about itself. */
export interface RouteEntry extends RouteInfo {
  readonly route: string
}

/** What answers a route nobody registered, unless `fallback()` set something else. */
export const notFound: Handler = (ctx) => {
  throw new RpcError(Code.NOT_FOUND, `no handler for route ${ctx.route}`)
}

/**
 * Routes are matched exactly: `/health` and `/health/` are different routes. A call to any other
 * route goes to the fallback handler, which answers NOT_FOUND unless `fallback()` replaced it.
 */
export class Mux {
  #routes = new Map<string, Handler>()
  #info = new Map<string, RouteInfo>()
  #fallback: Handler = notFound

  handle(route: string, handler: Handler, info?: RouteInfo): this {
    checkRoute(route)
    if (typeof handler !== 'function')
      throw new RpcError(Code.INVALID_ARGUMENT, `handler for ${route} must be a function`)
    if (this.#routes.has(route)) throw new RpcError(Code.ALREADY_EXISTS, `route ${route} is already handled`)
    // A declared kind is enforced for every call to the route (route-kind.ts).
    this.#routes.set(route, info?.kind === undefined ? handler : guardKind(route, info.kind, handler))
    if (info !== undefined) this.#info.set(route, { ...info })
    return this
  }

  /**
   * Sets the handler for calls to routes that are not registered (requests, streams and sessions
   * alike: `ctx.route` says which was asked for). Middleware runs before it, as for any route.
   */
  fallback(handler: Handler): this {
    if (typeof handler !== 'function')
      throw new RpcError(Code.INVALID_ARGUMENT, 'fallback must be a function')
    this.#fallback = handler
    return this
  }

  /** The handler registered for `route`, or undefined. */
  lookup(route: string): Handler | undefined {
    return this.#routes.get(route)
  }

  /** The fallback handler (NOT_FOUND by default). */
  get fallbackHandler(): Handler {
    return this.#fallback
  }

  /** What `route`'s registration said about it; undefined for unknown routes or when it said nothing. */
  describe(route: string): RouteInfo | undefined {
    return this.#info.get(route)
  }

  /** Every registered route with what its registration said, in registration order. */
  list(): RouteEntry[] {
    return [...this.#routes.keys()].map((route) => ({ route, ...this.#info.get(route) }))
  }

  get routes(): string[] {
    return [...this.#routes.keys()]
  }
}
