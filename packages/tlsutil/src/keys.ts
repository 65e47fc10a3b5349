import { createPrivateKey, KeyObject, webcrypto } from 'node:crypto'
import { TlsUtilError } from './errors'
import type { KeyAlgorithm } from './options'

export type CryptoKey = webcrypto.CryptoKey
export type CryptoKeyPair = webcrypto.CryptoKeyPair

// Node's WebCrypto, passed explicitly to the X.509 library instead of relying on a global.
export const nodeCrypto = webcrypto

/** How a key of each supported family is generated, imported and used to sign a certificate. */
interface KeyFamily {
  generate: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams
  import: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams
  sign: webcrypto.EcdsaParams | webcrypto.Algorithm
}

const FAMILIES: Record<KeyAlgorithm, KeyFamily> = {
  'ecdsa-p256': {
    generate: { name: 'ECDSA', namedCurve: 'P-256' },
    import: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
  },
  'rsa-2048': {
    generate: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
  },
}

export function generateKeyPair(algorithm: KeyAlgorithm): Promise<CryptoKeyPair> {
  // Extractable, because the private key is handed to the caller as PEM.
  return nodeCrypto.subtle.generateKey(FAMILIES[algorithm].generate, true, ['sign', 'verify'])
}

export function signingAlgorithm(algorithm: KeyAlgorithm): webcrypto.EcdsaParams | webcrypto.Algorithm {
  return FAMILIES[algorithm].sign
}

/** PKCS#8 PEM ("BEGIN PRIVATE KEY"), which node:tls and OpenSSL read for both key types. */
export function exportPrivateKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string
}

/**
 * Imports a PEM private key (PKCS#8, or the older PKCS#1/SEC1 forms) as a non-extractable signing key,
 * and reports which supported family it belongs to. Used for a CA that arrives as plain PEM strings.
 */
export async function importSigningKey(
  pem: string,
  what: string,
): Promise<{ key: CryptoKey; algorithm: KeyAlgorithm }> {
  let keyObject: KeyObject
  try {
    keyObject = createPrivateKey(pem)
  } catch (cause) {
    throw new TlsUtilError('INVALID_CA', `${what} is not a readable PEM private key`, { cause })
  }
  const algorithm = keyAlgorithmOf(keyObject)
  if (algorithm === undefined) {
    throw new TlsUtilError(
      'INVALID_CA',
      `${what} is a ${describeKey(keyObject)} key; only ECDSA P-256 and RSA (2048 bits or more) keys can sign`,
    )
  }
  const der = keyObject.export({ type: 'pkcs8', format: 'der' })
  const key = await nodeCrypto.subtle.importKey('pkcs8', der, FAMILIES[algorithm].import, false, ['sign'])
  return { key, algorithm }
}

/** Maps a key to the family that signs with it; RSA keys larger than 2048 bits sign the same way. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return 'ecdsa-p256'
  if (key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return 'rsa-2048'
  return undefined
}

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails
  if (details?.namedCurve) return `${key.asymmetricKeyType} ${details.namedCurve}`
  if (details?.modulusLength) return `${key.asymmetricKeyType} ${details.modulusLength}-bit`
  return String(key.asymmetricKeyType)
}
