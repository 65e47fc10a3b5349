import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The server to call unless `SRPC_ADDRESS` says otherwise. */
export const DEFAULT_ADDRESS = '127.0.0.1:8443'
/** The server's tick interval (same `SRPC_TICK_MS`), used only to bound how long the time stream may take, ms. */
export const DEFAULT_TICK_MS = 1000
/** Names the shared server certificate must cover; the same list as the server, so either may create the set. */
export const CERT_HOSTS = ['127.0.0.1', 'localhost', '::1']

// dist/main.js and src/main.ts both sit three folders below the repository root.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export interface Config {
  address: string
  certDir: string
  tickMs: number
}

/** Reads the environment once; a bad value stops the program with a message naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    address: env.SRPC_ADDRESS || DEFAULT_ADDRESS,
    certDir: resolve(env.SRPC_CERT_DIR || join(REPO_ROOT, '.srpc-certs')),
    tickMs: positiveIntEnv(env, 'SRPC_TICK_MS', DEFAULT_TICK_MS),
  }
}

function positiveIntEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive whole number of milliseconds, got ${JSON.stringify(raw)}`)
  }
  return value
}
