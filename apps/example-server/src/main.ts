import { loadConfig } from './config'
import { registerRoutes } from './routes'
import { run, serve } from './serve'

run('example-server', async () => {
  const config = loadConfig()
  console.log(`example-server: /stream/time ticks every ${config.tickMs} ms`)
  await serve('example-server', config, (server) => registerRoutes(server, config.tickMs))
})
