import { Code, checkRoute, RpcError } from '@srpc/protocol'
import type { Context } from './context'

/** What a handler may return: a reply for a request (when it did not call ctx.reply), or nothing. */
export type HandlerResult = undefined | Uint8Array | string
// biome-ignore lint/suspicious/noConfusingVoidType: handlers that return nothing are typed `void` by TypeScript
export type Handler = (ctx: Context) => HandlerResult | void | Promise<HandlerResult | void>

/** Routes are matched exactly: `/health` and `/health/` are different routes. */
export class Mux {
  #routes = new Map<string, Handler>()

  handle(route: string, handler: Handler): this {
    checkRoute(route)
    if (typeof handler !== 'function')
      throw new RpcError(Code.INVALID_ARGUMENT, `handler for ${route} must be a function`)
    if (this.#routes.has(route)) throw new RpcError(Code.ALREADY_EXISTS, `route ${route} is already handled`)
    this.#routes.set(route, handler)
    return this
  }

  lookup(route: string): Handler | undefined {
    return this.#routes.get(route)
  }

  get routes(): string[] {
    return [...this.#routes.keys()]
  }
}
