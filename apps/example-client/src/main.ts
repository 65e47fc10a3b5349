import { Pool } from '@srpc/client'
import { clientTlsOptions, ensureCertificateSet } from '@srpc/tlsutil'
import { concurrencyCheck, echoChecks, healthChecks, timeStreamCheck } from './checks'
import { CERT_HOSTS, loadConfig } from './config'
import { formatMs } from './report'

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
  ])
  await pool.close()

  const results = groups.flat()
  const failed = results.filter((r) => !r.ok)
  const took = formatMs(performance.now() - started)
  if (failed.length === 0) {
    console.log(`all ${results.length} checks passed in ${took}`)
    return 0
  }
  console.log(
    `${failed.length} of ${results.length} checks failed (${failed.map((r) => r.name).join(', ')}) in ${took}`,
  )
  return 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: Error) => {
    console.error(`example-client: ${err.message}`)
    process.exitCode = 1
  },
)
