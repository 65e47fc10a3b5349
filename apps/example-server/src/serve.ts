import { Server } from '@srpc/server'
import { ensureCertificateSet, serverTlsOptions } from '@srpc/tlsutil'
import { CERT_HOSTS, type DemoConfig, formatAddress } from './demo-config'

const SHUTDOWN_TIMEOUT = 5000

/**
 * Runs a demo server until SIGINT or SIGTERM: loads (or creates) the shared certificates,
 * requires client certificates from the same CA (mutual TLS, as the client verifies ours),
 * registers the routes, listens, and shuts down gracefully on the first signal.
 */
export async function serve(
  name: string,
  config: DemoConfig,
  routes: (server: Server) => void,
): Promise<void> {
  // Creates the shared CA and certificates on first run; later runs (and the client) load the same files.
  const certs = await ensureCertificateSet(config.certDir, { hosts: CERT_HOSTS })
  const server = new Server({
    address: config.address,
    tls: serverTlsOptions(certs.server, { requestClientCert: true }),
  })
  routes(server)
  server.on('error', (err) => console.error(`${name}: ${err.message}`))

  const { address, port } = await server.listen()
  console.log(`listening on ${formatAddress(address, port)}`)
  console.log(`  routes: ${server.mux.routes.join(', ')}`)
  console.log(`  certificates: ${config.certDir}`)

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${name}: ${signal} again, exiting now`)
      process.exit(1)
    }
    stopping = true
    console.log(`${signal}: shutting down (calls in flight get up to ${SHUTDOWN_TIMEOUT} ms)`)
    server.shutdown({ timeout: SHUTDOWN_TIMEOUT }).then(
      () => console.log('stopped'),
      (err: Error) => {
        console.error(`${name}: shutdown failed: ${err.message}`)
        process.exitCode = 1
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

/** Runs `main`, reporting a failure as one line and a non-zero exit code. */
export function run(name: string, main: () => Promise<void>): void {
  main().catch((err: Error) => {
    console.error(`${name}: ${err.message}`)
    process.exitCode = 1
  })
}
