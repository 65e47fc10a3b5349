import { initTRPC } from '@trpc/server'
import { Order } from './service'

const t = initTRPC.create()

/** The tRPC side: one mutation (a POST body: the input does not fit a URL well) with the same schema. */
export const ordersRouter = t.router({
  echo: t.procedure.input(Order).mutation(({ input }) => input),
})
export type OrdersRouter = typeof ordersRouter
