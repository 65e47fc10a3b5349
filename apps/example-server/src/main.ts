import { Server } from '@srpc/server'
import { ensureCertificateSet, serverTlsOptions } from '@srpc/tlsutil'
import { CERT_HOSTS, formatAddress, loadConfig } from './config'
import { registerRoutes } from './routes'

const SHUTDOWN_TIMEOUT = 5000

async function main(): Promise<void> {
  const config = loadConfig()
  // Creates the shared CA and certificates on first run; later runs (and the client) load the same files.
  const certs = await ensureCertificateSet(config.certDir, { hosts: CERT_HOSTS })
  const server = new Server({
    address: config.address,
    // Mutual TLS: the client must present a certificate from the same CA, as it verifies ours.
    tls: serverTlsOptions(certs.server, { requestClientCert: true }),
  })
  registerRoutes(server, config.tickMs)
  server.on('error', (err) => console.error(`example-server: ${err.message}`))

  const { address, port } = await server.listen()
  console.log(`listening on ${formatAddress(address, port)}`)
  console.log(`  routes: ${server.mux.routes.join(', ')} (tick every ${config.tickMs} ms)`)
  console.log(`  certificates: ${config.certDir}`)

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`example-server: ${signal} again, exiting now`)
      process.exit(1)
    }
    stopping = true
    console.log(`${signal}: shutting down (calls in flight get up to ${SHUTDOWN_TIMEOUT} ms)`)
    server.shutdown({ timeout: SHUTDOWN_TIMEOUT }).then(
      () => console.log('stopped'),
      (err: Error) => {
        console.error(`example-server: shutdown failed: ${err.message}`)
        process.exitCode = 1
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((err: Error) => {
  console.error(`example-server: ${err.message}`)
  process.exitCode = 1
})
