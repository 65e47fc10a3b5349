import type * as CertificateBuilder from './certificate-builder'

let builder: Promise<typeof CertificateBuilder> | undefined

/**
 * The certificate builder, loaded when a certificate is first made. It brings @peculiar/x509 and
 * what that library needs (about 3 MB of heap once evaluated, and their load time), which an app
 * that only turns PEM it already has into TLS options (`serverTlsOptions`, `clientTlsOptions`,
 * `loadCertificateSet`) never uses.
 */
export function certificateBuilder(): Promise<typeof CertificateBuilder> {
  builder ??= import('./certificate-builder')
  return builder
}
