import { Server } from '@srpc/server'
import { ensureCertificateSet, serverTlsOptions } from '@srpc/tlsutil'
import { CERT_HOSTS, formatAddress, loadConfig } from './config'
import { registerRoutes } from './routes'

const SHUTDOWN_TIMEOUT = 5000

async function main(): Promise<void> {
  const config = loadConfig()
  const certs = await ensureCertificateSet(config.certDir, { hosts: CERT_HOSTS })
  const server = new Server({
    address: config.address,
    tls: serverTlsOptions(certs.server, { requestClientCert: true }),
  })
  registerRoutes(server)
  server.on('error', (err) => console.error(`test-server: ${err.message}`))

  const { address, port } = await server.listen()
  console.log(`listening on ${formatAddress(address, port)}`)
  console.log(`  routes: ${server.mux.routes.join(', ')}`)

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`test-server: ${signal} again, exiting now`)
      process.exit(1)
    }
    stopping = true
    console.log(`${signal}: shutting down (calls in flight get up to ${SHUTDOWN_TIMEOUT} ms)`)
    server.shutdown({ timeout: SHUTDOWN_TIMEOUT }).then(
      () => console.log('stopped'),
      (err: Error) => {
        console.error(`test-server: shutdown failed: ${err.message}`)
        process.exitCode = 1
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((err: Error) => {
  console.error(`test-server: ${err.message}`)
  process.exitCode = 1
})
