import { type DemoConfig, loadDemoConfig } from '../../example-server/src/demo-config'

export { CERT_HOSTS, DEFAULT_TICK_MS, formatAddress } from '../../example-server/src/demo-config'

/** Where the server listens and the client calls unless `SRPC_ADDRESS` says otherwise. */
export const DEFAULT_ADDRESS = '127.0.0.1:8443'

export function loadConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  return loadDemoConfig(DEFAULT_ADDRESS, env)
}
