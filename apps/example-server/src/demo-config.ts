import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Settings the four demo programs share (the test pair imports this file from here), read from the environment: a server listens where a
 * client calls, and both use one certificate set (created by whichever starts first).
 */

/** Interval between two ticks of `/stream/time` unless `SRPC_TICK_MS` says otherwise, ms. */
export const DEFAULT_TICK_MS = 1000
/** Names the shared server certificate covers, so clients can dial any of them with verification on. */
export const CERT_HOSTS = ['127.0.0.1', 'localhost', '::1']

// Each app bundles this file into apps/<app>/dist/main.js, three folders below the repository root.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export interface DemoConfig {
  address: string
  certDir: string
  tickMs: number
}

/** Reads the environment once; a bad value stops the program with a message naming the variable. */
export function loadDemoConfig(defaultAddress: string, env: NodeJS.ProcessEnv = process.env): DemoConfig {
  return {
    address: env.SRPC_ADDRESS || defaultAddress,
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

/** `host:port`, with brackets around an IPv6 host so the string can be pasted into SRPC_ADDRESS. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
