import { setTimeout as sleep } from 'node:timers/promises'
import type { Context, Server } from '@srpc/server'
import { registerNotes } from './notes'

/** Ticks sent by `/stream/time`; the last one ends the stream. */
export const TIME_TICKS = 10

/** Registers the demo's three raw routes (one per call mode the client exercises) and the typed Notes service. */
export function registerRoutes(server: Server, tickMs: number): void {
  server.handle('/health', () => JSON.stringify({ status: 'healthy' }))
  // Returning the payload replies with exactly the bytes that came in.
  server.handle('/echo', (ctx) => ctx.payload)
  server.handle('/stream/time', (ctx) => streamTime(ctx, tickMs))
  // The typed service (@srpc/contract) beside the raw routes.
  registerNotes(server)
}

async function streamTime(ctx: Context, tickMs: number): Promise<void> {
  const stream = ctx.stream()
  for (let tick = 1; tick <= TIME_TICKS; tick++) {
    // The signal fires when the client cancels or goes away: stop waiting instead of ticking into the void.
    if (tick > 1) await sleep(tickMs, undefined, { signal: ctx.signal })
    const chunk = JSON.stringify({ tick, time: new Date().toISOString() })
    await stream.writeChunk(chunk, tick === TIME_TICKS)
  }
}
