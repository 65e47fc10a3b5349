import * as tls from 'node:tls'
import { beforeAll, describe, expect, it } from 'vitest'
import { createCertificateAuthority, issueCertificate } from './certificate-authority'
import { clientTlsOptions, serverTlsOptions, type TlsMaterial } from './tls-options'

describe('TLS option builders', () => {
  let server: TlsMaterial
  let client: TlsMaterial
  beforeAll(async () => {
    const ca = await createCertificateAuthority()
    server = await issueCertificate(ca, { hosts: ['localhost'], usage: 'server' })
    client = await issueCertificate(ca, { usage: 'client' })
  })

  it('builds server options without client certificates by default', () => {
    expect(serverTlsOptions(server)).toEqual({ key: server.key, cert: server.cert, minVersion: 'TLSv1.2' })
  })

  it('builds mutual TLS server options that require a client certificate from the CA', () => {
    expect(serverTlsOptions(server, { requestClientCert: true })).toEqual({
      key: server.key,
      cert: server.cert,
      minVersion: 'TLSv1.2',
      requestCert: true,
      rejectUnauthorized: true,
      ca: server.ca,
    })
  })

  it('builds client options that always verify the server, with an optional identity and server name', () => {
    expect(clientTlsOptions(server.ca)).toEqual({
      ca: server.ca,
      rejectUnauthorized: true,
      checkServerIdentity: tls.checkServerIdentity,
      minVersion: 'TLSv1.2',
    })
    expect(clientTlsOptions(server.ca, client, { servername: 'API.example.com' })).toMatchObject({
      ca: server.ca,
      key: client.key,
      cert: client.cert,
      servername: 'api.example.com',
      rejectUnauthorized: true,
    })
  })

  it('refuses an IP address, a wildcard or a malformed name as servername', () => {
    expect(() => clientTlsOptions(server.ca, undefined, { servername: '127.0.0.1' })).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/is an IP address/),
      }),
    )
    expect(() => clientTlsOptions(server.ca, undefined, { servername: '*.example.com' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/wildcard/) }),
    )
    expect(() => clientTlsOptions(server.ca, undefined, { servername: 'bad name' })).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: 'servername "bad name" contains whitespace',
      }),
    )
  })

  it('refuses values that are not PEM, naming the option', () => {
    expect(() => clientTlsOptions('')).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: 'ca must be a PEM string containing a CERTIFICATE',
      }),
    )
    expect(() => clientTlsOptions(server.ca, { key: server.cert, cert: server.cert })).toThrow(
      expect.objectContaining({ message: 'identity.key must be a PEM string containing a PRIVATE KEY' }),
    )
    expect(() => serverTlsOptions({ ...server, cert: server.key })).toThrow(
      expect.objectContaining({ message: 'material.cert must be a PEM string containing a CERTIFICATE' }),
    )
    expect(() => serverTlsOptions({ ...server, ca: '' }, { requestClientCert: true })).toThrow(
      expect.objectContaining({ message: 'material.ca must be a PEM string containing a CERTIFICATE' }),
    )
  })
})
