import { Pool } from '@srpc/client'
import { clientTlsOptions, ensureCertificateSet } from '@srpc/tlsutil'
import { type CheckResult, check, expect, runClient, summarize } from '../../example-client/src/report'
import { CERT_HOSTS, loadConfig } from './config'

const CALL_TIMEOUT = 5000
const HEALTH_CALLS = 10
/** Bound on the whole chat session, ms. */
const SESSION_TIMEOUT = 10_000
const CHAT = [
  { send: 'Hello from the client', expect: 'Hello, World!' },
  { send: 'Goodbye from the client', expect: 'Goodbye, World!' },
]

async function healthCheck(pool: Pool): Promise<CheckResult> {
  return check(`${HEALTH_CALLS} concurrent health calls`, async () => {
    const replies = await Promise.all(
      Array.from({ length: HEALTH_CALLS }, () => pool.call('/health', '', { timeout: CALL_TIMEOUT })),
    )
    const wrong = replies.map((r) => r.toString('utf8')).filter((r) => r !== '{"status":"healthy"}')
    expect(wrong.length === 0, `${wrong.length} replies were not {"status":"healthy"}: ${wrong[0]}`)
    return `${HEALTH_CALLS}/${HEALTH_CALLS} replied {"status":"healthy"}`
  })
}

/** One session: each message gets its own reply, in order, then both sides close. */
async function chatChecks(pool: Pool): Promise<CheckResult[]> {
  const opening = pool.createBidirectionalSession('/chat', { timeout: SESSION_TIMEOUT })
  // Awaited by every step below; a failed open fails each of them with the same error.
  opening.catch(() => {})
  const results: CheckResult[] = []
  for (const [i, step] of CHAT.entries()) {
    const result = await check(`chat message ${i + 1}`, async () => {
      const session = await opening
      await session.send(step.send)
      const reply = (await session.receive())?.toString('utf8')
      expect(reply === step.expect, `expected ${JSON.stringify(step.expect)}, got ${JSON.stringify(reply)}`)
      return `sent ${JSON.stringify(step.send)}, got ${JSON.stringify(reply)}`
    })
    results.push(result)
  }
  results.push(
    await check('chat close', async () => {
      const session = await opening
      await session.close()
      const extra = await session.receive()
      expect(
        extra === undefined,
        `the server sent another message: ${JSON.stringify(extra?.toString('utf8'))}`,
      )
      expect(
        session.error === undefined,
        `the session ended with ${session.error?.code}: ${session.error?.message}`,
      )
      return 'both halves closed cleanly, nothing left unread'
    }),
  )
  return results
}

async function main(): Promise<number> {
  const config = loadConfig()
  const certs = await ensureCertificateSet(config.certDir, { hosts: CERT_HOSTS })
  const pool = new Pool({
    address: config.address,
    tls: clientTlsOptions(certs.ca, certs.client),
    connectTimeout: 5000,
  })
  const backgroundErrors = new Set<string>()
  pool.on('error', (err) => {
    const line = `${err.code}: ${err.message}`
    if (!backgroundErrors.has(line)) console.error(`test-client: background: ${line}`)
    backgroundErrors.add(line)
  })

  console.log(`test-client → ${config.address}`)
  const started = performance.now()
  const results = [await healthCheck(pool), ...(await chatChecks(pool))]
  await pool.close()

  return summarize(results, started)
}

runClient('test-client', main)
