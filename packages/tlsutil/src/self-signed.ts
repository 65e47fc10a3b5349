import { certificateBuilder } from './certificate-builder-loader'
import { parseHosts } from './hosts'
import { exportPrivateKeyPem, generateKeyPair } from './keys'
import {
  DEFAULT_LEAF_VALIDITY_DAYS,
  type KeyAlgorithm,
  resolveAlgorithm,
  resolveCommonName,
  resolveOptionsObject,
  resolveValidityDays,
} from './options'
import {
  type ClientTlsOptions,
  clientTlsOptions,
  type ServerTlsOptions,
  serverTlsOptions,
  type TlsMaterial,
} from './tls-options'

export interface SelfSignedOptions {
  /** Key type; default `'ecdsa-p256'`. */
  algorithm?: KeyAlgorithm
  /** Days the certificate stays valid; default 365. */
  validityDays?: number
  /** Subject commonName; default the first host. Clients match hosts against subjectAltName, not this. */
  commonName?: string
}

export interface SelfSignedResult extends TlsMaterial {
  /** For `tls.createServer`. */
  serverOptions: ServerTlsOptions
  /** For `tls.connect`: trusts exactly this certificate and checks the host name. */
  clientOptions: ClientTlsOptions
}

/**
 * A new key pair and a self-signed server certificate naming every host (DNS names and IP addresses)
 * in its subjectAltName. Clients trust the certificate itself, so verification stays on.
 */
export async function selfSigned(hosts: string[], options?: SelfSignedOptions): Promise<SelfSignedResult> {
  const names = parseHosts(hosts)
  const opts = resolveOptionsObject(options, 'selfSigned options')
  const algorithm = resolveAlgorithm(opts.algorithm)
  const validityDays = resolveValidityDays(opts.validityDays, DEFAULT_LEAF_VALIDITY_DAYS)
  const commonName = resolveCommonName(opts.commonName, names[0].value)

  const { createCertificate, leafExtensions, subjectName } = await certificateBuilder()
  const keys = await generateKeyPair(algorithm)
  const cert = await createCertificate({
    commonName,
    publicKey: keys.publicKey,
    // Issuer and subject are the same name: this certificate is its own trust anchor.
    signer: { name: subjectName(commonName), key: keys.privateKey, algorithm },
    validityDays,
    extensions: await leafExtensions({ publicKey: keys.publicKey, algorithm, usage: 'server', hosts: names }),
  })
  const material: TlsMaterial = { key: exportPrivateKeyPem(keys.privateKey), cert, ca: cert }
  return {
    ...material,
    serverOptions: serverTlsOptions(material),
    clientOptions: clientTlsOptions(material.ca),
  }
}
