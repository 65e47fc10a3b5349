import { compose, type Middleware } from './middleware'
import { type Handler, Mux } from './mux'

/**
 * Finds the handler for a call: the route's, or the fallback's for a route nobody registered,
 * wrapped in the middleware. Wrapped handlers are built on first use of a route and kept; every
 * unknown route shares one wrapped fallback, so a stranger's made-up routes cost no memory.
 */
export class Router {
  /** The route table: `handle` and `fallback` (the seed's `server.mux`). */
  readonly mux = new Mux()
  #middleware: Middleware[] = []
  /** Handlers wrapped in the middleware, one per registered route that was called. */
  #composed = new Map<string, Handler>()
  /** The fallback wrapped in the middleware; rebuilt when the fallback changes. */
  #composedFallback: { base: Handler; handler: Handler } | undefined

  /** Adds middleware around every handler, the first added outermost. */
  use(middleware: Middleware): void {
    this.#middleware.push(middleware)
    this.#composed.clear()
    this.#composedFallback = undefined
  }

  /** The handler for `route` with the middleware around it; the fallback's for an unknown route. */
  lookup(route: string): Handler {
    // No middleware: the handler itself, with no wrapper and no cache entry.
    if (this.#middleware.length === 0) return this.mux.lookup(route) ?? this.mux.fallbackHandler
    const cached = this.#composed.get(route)
    if (cached !== undefined) return cached
    const base = this.mux.lookup(route)
    if (base === undefined) return this.#fallback()
    const handler = compose(this.#middleware, base)
    this.#composed.set(route, handler)
    return handler
  }

  /** Routes whose wrapped handler is cached (registered routes only). */
  get cachedRoutes(): number {
    return this.#composed.size
  }

  #fallback(): Handler {
    const fallback = this.mux.fallbackHandler
    if (this.#composedFallback?.base !== fallback) {
      this.#composedFallback = { base: fallback, handler: compose(this.#middleware, fallback) }
    }
    return this.#composedFallback.handler
  }
}
