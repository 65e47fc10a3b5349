/**
 * `@srpc/server/internal`: what tests and the apps in this repository reach for outside the
 * public API and its semver promise.
 */
// The types come from the package by its own name (tsconfig paths here, the exports map for
// users): the declarations then name the main entry's Server, in its ESM or CJS flavour.
import type { ConcurrencyLimiter, Server } from '@srpc/server'
import { limiterOf as limiterOfServer } from './server'

/** The concurrency limiter of `server`: `active` and `queued` handlers right now. */
export const limiterOf: (server: Server) => ConcurrencyLimiter = limiterOfServer
