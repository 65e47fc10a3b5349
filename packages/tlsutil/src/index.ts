export {
  type CertificateAuthority,
  type CertificateAuthorityOptions,
  type CertificateUsage,
  createCertificateAuthority,
  type IssueCertificateOptions,
  issueCertificate,
} from './certificate-authority'
export {
  CERTIFICATE_SET_FILES,
  type CertificateSet,
  type CertificateSetInput,
  loadCertificateSet,
  writeCertificateSet,
} from './certificate-set'
export { type EnsureCertificateSetOptions, ensureCertificateSet } from './ensure-certificate-set'
export { TlsUtilError, type TlsUtilErrorCode } from './errors'
export type { KeyAlgorithm } from './options'
export { type SelfSignedOptions, type SelfSignedResult, selfSigned } from './self-signed'
export {
  type ClientTlsOptions,
  clientTlsOptions,
  type KeyCertPair,
  type ServerTlsOptions,
  serverTlsOptions,
  type TlsMaterial,
} from './tls-options'
