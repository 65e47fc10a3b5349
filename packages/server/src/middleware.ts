import type { Context } from './context'
import type { Handler, HandlerResult } from './mux'

/**
 * Runs around every handler, requests and sessions alike, in the order given to
 * `server.use()`. Call `next()` to go on (its promise settles when the rest of the chain is
 * done); throw an RpcError to refuse the call, e.g. UNAUTHENTICATED for a bad token.
 */
export type Middleware = (
  ctx: Context,
  next: () => Promise<HandlerResult>,
) => HandlerResult | undefined | Promise<HandlerResult | undefined> | void | Promise<void>

/** Wraps `handler` in `middleware`, outermost first. With no middleware it is the handler itself. */
export function compose(middleware: readonly Middleware[], handler: Handler): Handler {
  if (middleware.length === 0) return handler
  return (ctx) => {
    const dispatch = async (i: number): Promise<HandlerResult> => {
      if (i === middleware.length) return (await handler(ctx)) as HandlerResult
      let called = false
      const result = await middleware[i](ctx, () => {
        if (called) throw new Error('next() called twice in one middleware')
        called = true
        return dispatch(i + 1)
      })
      return result as HandlerResult
    }
    return dispatch(0)
  }
}
