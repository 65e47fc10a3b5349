import type { PoolOptions } from '@srpc/client'
import type { CompressionSetting } from '../messages'

/**
 * What srpc gets for the "on" rows (f-*-on, h-on). Every other explicit row runs with
 * compression off, as the references do; the "default" rows (c-default, d-default, h-default)
 * leave the option unset, which is what a user gets. Set this to `undefined` to mark the "on"
 * rows n/a, e.g. on a branch without the option.
 */
export const SRPC_COMPRESSION_ON: PoolOptions['compression'] | undefined = true

/** zlib level the raw TLS reference uses, the same as srpc's (deflate-raw, level 1). */
export const RAW_DEFLATE_LEVEL = 1

export function srpcSupportsCompression(): boolean {
  return SRPC_COMPRESSION_ON !== undefined
}

/** The `compression` option for Pool and Server: the "on" setting, explicitly off, or not passed. */
export function srpcCompression(setting: CompressionSetting): PoolOptions['compression'] {
  if (setting === 'default') return undefined
  return setting === 'on' && SRPC_COMPRESSION_ON !== undefined ? SRPC_COMPRESSION_ON : false
}
