import { Pool } from '@srpc/client'
import { clientTlsOptions, ensureCertificateSet } from '@srpc/tlsutil'
import { concurrencyCheck, echoChecks, healthChecks, timeStreamCheck } from './checks'
import { CERT_HOSTS, loadConfig } from './config'
import { notesChecks } from './notes-checks'
import { runClient, summarize } from './report'

const POOL_SIZE = 3

async function main(): Promise<number> {
  const config = loadConfig()
  const certs = await ensureCertificateSet(config.certDir, { hosts: CERT_HOSTS })
  // Verifies the server against the shared CA (chain and host name) and presents our certificate for mTLS.
  const tls = clientTlsOptions(certs.ca, certs.client)
  const pool = new Pool({ address: config.address, tls, size: POOL_SIZE, connectTimeout: 5000 })
  // Connection attempts nobody waited for fail here; the checks report what callers saw, so say each once.
  const backgroundErrors = new Set<string>()
  pool.on('error', (err) => {
    const line = `${err.code}: ${err.message}`
    if (!backgroundErrors.has(line)) console.error(`example-client: background: ${line}`)
    backgroundErrors.add(line)
  })

  console.log(`example-client → ${config.address} (pool of ${POOL_SIZE}, running every check at once)`)
  const started = performance.now()
  const groups = await Promise.all([
    healthChecks(pool),
    echoChecks(pool),
    timeStreamCheck(pool, config.tickMs),
    concurrencyCheck(pool),
    notesChecks(pool),
  ])
  await pool.close()

  const results = groups.flat()
  return summarize(results, started)
}

runClient('example-client', main)
