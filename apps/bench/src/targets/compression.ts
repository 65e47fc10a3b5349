import type { PoolOptions } from '@srpc/client'

/**
 * What srpc gets for the "on" rows of scenario f. Every other row runs with compression off, as
 * the references do (srpc's default is on, which would compress the patterned payloads of c, d
 * and e). Set this to `undefined` to mark the "on" rows n/a, e.g. on a branch without the option.
 */
export const SRPC_COMPRESSION_ON: PoolOptions['compression'] | undefined = true

/** zlib level the raw TLS reference uses, the same as srpc's default (deflate-raw, level 1). */
export const RAW_DEFLATE_LEVEL = 1

export function srpcSupportsCompression(): boolean {
  return SRPC_COMPRESSION_ON !== undefined
}

/** The `compression` option for Pool and Server: the "on" setting, or explicitly off. */
export function srpcCompression(on: boolean): PoolOptions['compression'] {
  return on && SRPC_COMPRESSION_ON !== undefined ? SRPC_COMPRESSION_ON : false
}
