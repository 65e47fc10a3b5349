/**
 * `@srpc/server/internal`: what tests and the apps in this repository reach for outside the
 * public API and its semver promise. Types come from the main entry, so its classes stay one.
 */
import type { ConcurrencyLimiter, Server } from './index'
import { limiterOf as limiterOfServer } from './server'

/** The concurrency limiter of `server`: `active` and `queued` handlers right now. */
export const limiterOf: (server: Server) => ConcurrencyLimiter = limiterOfServer
