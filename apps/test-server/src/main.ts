import { run, serve } from '../../example-server/src/serve'
import { loadConfig } from './config'
import { registerRoutes } from './routes'

run('test-server', () => serve('test-server', loadConfig(), registerRoutes))
