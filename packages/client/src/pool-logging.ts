import { errorFields, type Logger, SILENT_LOGGER } from '@srpc/core'
import type { EventEmitter } from 'eventemitter3'
import type { PoolEvents } from './connectivity-state'

/**
 * Writes what a pool's events tell to its logger, with structured fields (connections log their
 * own opening and closing, with their id). Nothing is subscribed for the default silent logger.
 */
export function logPoolEvents(pool: EventEmitter<PoolEvents>, logger: Logger): void {
  if (logger === SILENT_LOGGER) return
  pool.on('reconnecting', ({ slot, attempt, delay, error }) =>
    logger.debug({ slot, attempt, delay, ...errorFields(error) }, 'reconnecting'),
  )
  pool.on('error', (error) => logger.warn({ ...errorFields(error) }, 'connection failed'))
  pool.on('unhealthy', ({ address, slot, error }) =>
    logger.warn({ peer: address, slot, ...errorFields(error) }, 'server unhealthy'),
  )
  pool.on('healthy', ({ address }) => logger.info({ peer: address }, 'server healthy again'))
  pool.on('stateChange', ({ from, to }) =>
    (to === 'transient_failure' ? logger.warn : logger.debug)({ from, to }, `pool ${to}`),
  )
}
