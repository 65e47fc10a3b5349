import { TlsUtilError } from './errors'

/** The key types tlsutil generates. ECDSA P-256 is the default: it is generated in about a millisecond. */
export type KeyAlgorithm = 'ecdsa-p256' | 'rsa-2048'

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ecdsa-p256', 'rsa-2048']
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'ecdsa-p256'
export const DEFAULT_LEAF_VALIDITY_DAYS = 365
export const DEFAULT_CA_VALIDITY_DAYS = 3650
// Far enough for any real use, small enough that a typo (days vs. milliseconds) is caught.
export const MAX_VALIDITY_DAYS = 36500
// Certificates start a little in the past so that a peer whose clock runs behind still accepts them.
export const CLOCK_SKEW_MS = 5 * 60 * 1000
// X.520 upper bound for a commonName.
const MAX_COMMON_NAME_LENGTH = 64

export function resolveAlgorithm(value: unknown, option = 'algorithm'): KeyAlgorithm {
  if (value === undefined) return DEFAULT_KEY_ALGORITHM
  if (typeof value === 'string' && (KEY_ALGORITHMS as readonly string[]).includes(value)) {
    return value as KeyAlgorithm
  }
  throw new TlsUtilError(
    'INVALID_ARGUMENT',
    `${option} must be one of ${KEY_ALGORITHMS.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`,
  )
}

export function resolveValidityDays(value: unknown, fallback: number, option = 'validityDays'): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_VALIDITY_DAYS) {
    throw new TlsUtilError(
      'INVALID_ARGUMENT',
      `${option} must be a whole number of days from 1 to ${MAX_VALIDITY_DAYS}, got ${JSON.stringify(value)}`,
    )
  }
  return value
}

export function resolveCommonName(value: unknown, fallback: string, option = 'commonName'): string {
  if (value === undefined) return fallback.slice(0, MAX_COMMON_NAME_LENGTH)
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_COMMON_NAME_LENGTH) {
    throw new TlsUtilError(
      'INVALID_ARGUMENT',
      `${option} must be a string of 1 to ${MAX_COMMON_NAME_LENGTH} characters, got ${JSON.stringify(value)}`,
    )
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new TlsUtilError('INVALID_ARGUMENT', `${option} must not contain control characters`)
  }
  return value
}

/** Rejects a non-object options argument early, so a misplaced argument gets a clear message. */
export function resolveOptionsObject<T extends object>(value: T | undefined, what: string): Partial<T> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TlsUtilError('INVALID_ARGUMENT', `${what} must be an object`)
  }
  return value
}
