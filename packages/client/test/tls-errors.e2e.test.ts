import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { Server, type ServerOptions } from '@srpc/server'
import {
  type CertificateAuthority,
  type ClientTlsOptions,
  clientTlsOptions,
  createCertificateAuthority,
  issueCertificate,
  serverTlsOptions,
  type TlsMaterial,
} from '@srpc/tlsutil'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Code, Pool, type PoolOptions, type RpcError } from '../src/index'
import { errorOf, Harness } from './harness'

let ca: CertificateAuthority
let otherCa: CertificateAuthority
let ipCert: TlsMaterial
let localhostOnly: TlsMaterial
beforeAll(async () => {
  ca = await createCertificateAuthority()
  otherCa = await createCertificateAuthority()
  ipCert = await issueCertificate(ca, { hosts: ['127.0.0.1'], usage: 'server' })
  localhostOnly = await issueCertificate(ca, { hosts: ['localhost'], usage: 'server' })
})

const h = new Harness()
const servers: Server[] = []
const pools: Pool[] = []
const https: HttpsServer[] = []
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()))
  await Promise.all(servers.splice(0).map((s) => s.shutdown({ timeout: 100 })))
  for (const server of https.splice(0)) server.close()
  await h.cleanup()
})

async function serve(tls: ServerOptions['tls']): Promise<number> {
  const server = new Server({ address: '127.0.0.1:0', tls })
  server.handle('/echo', (ctx) => ctx.payload)
  servers.push(server)
  return (await server.listen()).port
}

/**
 * Dials with a TLS configuration the server refuses and makes a call that would retry
 * UNAVAILABLE three times, a second apart. Redials come quickly (backoff 20–60 ms), so the pool
 * has retried the connection several times by the time the events are counted.
 */
async function refusedCall(port: number, tls: ClientTlsOptions, options: Partial<PoolOptions> = {}) {
  const pool = new Pool({
    address: `127.0.0.1:${port}`,
    tls,
    backoff: { initial: 20, multiplier: 1.5, max: 60 },
    ...options,
  })
  pools.push(pool)
  const errors: RpcError[] = []
  let reconnects = 0
  pool.on('error', (err) => errors.push(err))
  pool.on('reconnecting', () => reconnects++)
  const started = performance.now()
  const err = await errorOf(
    pool.call('/echo', 'hi', {
      timeout: 10_000,
      retry: {
        codes: [Code.UNAVAILABLE],
        maxAttempts: 3,
        backoff: { initial: 1000, multiplier: 1, max: 1000 },
      },
    }),
  )
  const took = performance.now() - started
  // Let the pool redial a few times more: none of those attempts may add an error event.
  while (reconnects < 4) await new Promise((resolve) => setTimeout(resolve, 10))
  return { err, took, errors, pool }
}

function expectConfigurationError(
  result: Awaited<ReturnType<typeof refusedCall>>,
  sentence: string,
  causeCode: string,
): void {
  const { err, took, errors } = result
  expect(err.code).toBe(Code.UNAUTHENTICATED)
  expect(err.message).toContain(sentence)
  expect(err.message).not.toMatch(/SSL routines|alert number/)
  expect((err.cause as NodeJS.ErrnoException).code).toBe(causeCode)
  // One attempt: a retry on UNAVAILABLE would have waited a second before the next one.
  expect(took).toBeLessThan(1000)
  expect(errors).toHaveLength(1)
  expect(errors[0].code).toBe(Code.UNAUTHENTICATED)
  expect(errors[0].message).toContain(sentence)
}

describe('a TLS configuration the server refuses fails calls with UNAUTHENTICATED and a plain sentence', () => {
  it('a server certificate signed by a CA the client does not trust', async () => {
    const port = await serve(serverTlsOptions(ipCert))
    const result = await refusedCall(port, clientTlsOptions(otherCa.cert))
    expectConfigurationError(
      result,
      "the server's certificate is not signed by a CA this client trusts",
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    )
    expect(result.err.message).toContain(`127.0.0.1:${port}`)
  })

  it('a server certificate for another host name', async () => {
    const port = await serve(serverTlsOptions(localhostOnly))
    const result = await refusedCall(port, clientTlsOptions(ca.cert))
    expectConfigurationError(
      result,
      "the server's certificate is for localhost, not 127.0.0.1",
      'ERR_TLS_CERT_ALTNAME_INVALID',
    )
  })

  it('a server that requires a client certificate (TLS 1.3: refused after the handshake)', async () => {
    const port = await serve(serverTlsOptions(ipCert, { requestClientCert: true }))
    const result = await refusedCall(port, clientTlsOptions(ca.cert))
    expectConfigurationError(
      result,
      'the server requires a client certificate: pass cert and key',
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    )
    expect(result.err.message).toContain(`127.0.0.1:${port}`)
  })

  it('fails a call that waits for ready at once, not at its deadline', async () => {
    const port = await serve(serverTlsOptions(ipCert))
    const pool = new Pool({ address: `127.0.0.1:${port}`, tls: clientTlsOptions(otherCa.cert) })
    pools.push(pool)
    const started = performance.now()
    const err = await errorOf(pool.call('/echo', 'hi', { timeout: 5000, waitForReady: true }))
    expect(err.code).toBe(Code.UNAUTHENTICATED)
    expect(performance.now() - started).toBeLessThan(2000)
    // A later call does not wait for the next redial either.
    const later = await errorOf(pool.call('/echo', 'hi', { timeout: 5000, waitForReady: true }))
    expect(later.code).toBe(Code.UNAUTHENTICATED)
  })
})

describe('a server that does not speak srpc', () => {
  it('an HTTPS server is named as such, not as "unsupported frame version 72"', async () => {
    const server = createHttpsServer({ key: ipCert.key, cert: ipCert.cert }, (_req, res) => res.end('hello'))
    https.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const { port } = server.address() as AddressInfo
    const pool = new Pool({ address: `127.0.0.1:${port}`, tls: clientTlsOptions(ca.cert) })
    pools.push(pool)
    pool.on('error', () => {})
    const err = await errorOf(pool.call('/echo', 'hi', { timeout: 5000 }))
    expect(err.code).toBe(Code.PROTOCOL_ERROR)
    expect(err.message).toBe(
      `the server at 127.0.0.1:${port} does not speak srpc; its first bytes look like HTTP`,
    )
  })
})

describe('timeout messages', () => {
  it('say whole milliseconds, also for the time left after waiting for a connection', async () => {
    const { address } = await h.server((s) => s.mux.handle('/hang', () => new Promise(() => {})))
    const pool = await h.pool(address)
    // The call first waits for the pool to connect; it goes out with what is left of its 300 ms.
    const call = await errorOf(pool.call('/hang', '', { timeout: 300 }))
    expect(call.code).toBe(Code.DEADLINE_EXCEEDED)
    expect(call.message).toMatch(/^call timed out after \d+ ms$/)
    const stream = await errorOf(
      (async () => {
        for await (const _ of pool.callStream('/hang', '', { timeout: 150.5 })) {
          // nothing arrives
        }
      })(),
    )
    expect(stream.code).toBe(Code.DEADLINE_EXCEEDED)
    expect(stream.message).toBe('timed out after 151 ms')
  })
})
