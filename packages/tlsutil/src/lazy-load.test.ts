import { describe, expect, it } from 'vitest'

// vitest's forks pool runs every test file in a process of its own, so nothing else has loaded
// @peculiar/x509 here. The library needs reflect-metadata first, which defines Reflect.getMetadata:
// that global says whether the certificate code has been evaluated.
const certificateLibraryLoaded = () =>
  typeof (Reflect as { getMetadata?: unknown }).getMetadata === 'function'

describe('loading @srpc/tlsutil', () => {
  it('evaluates the certificate library only once a certificate is made', async () => {
    expect(certificateLibraryLoaded()).toBe(false)
    const tlsutil = await import('./index')
    expect(certificateLibraryLoaded()).toBe(false)

    const material = await tlsutil.selfSigned(['127.0.0.1'])
    expect(certificateLibraryLoaded()).toBe(true)
    expect(material.cert).toMatch(/^-----BEGIN CERTIFICATE-----/)
    // A second certificate reuses the loaded builder, and the TLS options from PEM still work.
    const ca = await tlsutil.createCertificateAuthority()
    const leaf = await tlsutil.issueCertificate(ca, { usage: 'server', hosts: ['localhost'] })
    expect(tlsutil.serverTlsOptions(leaf).cert).toBe(leaf.cert)
  })
})
