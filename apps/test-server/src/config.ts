import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where the server listens unless `SRPC_ADDRESS` says otherwise (the example pair uses 8443). */
export const DEFAULT_ADDRESS = '127.0.0.1:8444'
/** Names the shared server certificate covers, so clients can dial any of them with verification on. */
export const CERT_HOSTS = ['127.0.0.1', 'localhost', '::1']

// dist/main.js and src/main.ts both sit three folders below the repository root.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export interface Config {
  address: string
  certDir: string
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    address: env.SRPC_ADDRESS || DEFAULT_ADDRESS,
    certDir: resolve(env.SRPC_CERT_DIR || join(REPO_ROOT, '.srpc-certs')),
  }
}

/** `host:port`, with brackets around an IPv6 host so the string can be pasted into SRPC_ADDRESS. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
