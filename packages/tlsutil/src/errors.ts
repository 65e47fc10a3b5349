/**
 * The closed set of reasons a tlsutil call can fail. Callers branch on `code`; the message is for humans.
 *
 * - `EMPTY_HOSTS`: a certificate that must name hosts was given none.
 * - `INVALID_HOST`: a host is neither an IP address nor a valid DNS name.
 * - `INVALID_ARGUMENT`: an option has the wrong type or is out of range; the message names the option.
 * - `INVALID_CA`: the certificate authority's key or certificate cannot be used to issue certificates.
 * - `FILE_ERROR`: a certificate folder or file cannot be read, written or understood; `path` names it.
 */
export type TlsUtilErrorCode =
  | 'EMPTY_HOSTS'
  | 'INVALID_HOST'
  | 'INVALID_ARGUMENT'
  | 'INVALID_CA'
  | 'FILE_ERROR'

export interface TlsUtilErrorOptions {
  cause?: unknown
  /** The file or folder the error is about, for `FILE_ERROR`. */
  path?: string
}

export class TlsUtilError extends Error {
  override readonly name = 'TlsUtilError'
  readonly code: TlsUtilErrorCode
  readonly path: string | undefined

  constructor(code: TlsUtilErrorCode, message: string, options: TlsUtilErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.path = options.path
  }
}
