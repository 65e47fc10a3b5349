import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The server to call unless `SRPC_ADDRESS` says otherwise (the example pair uses 8443). */
export const DEFAULT_ADDRESS = '127.0.0.1:8444'
/** Names the shared server certificate must cover; the same list as the server, so either may create the set. */
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
