import { defineConfig } from 'tsup'

export default defineConfig({
  // The parent and the two worker processes it forks for every cell; the typed-services scenario's
  // three; the WebSocket bench; the observability benches.
  entry: [
    'src/main.ts',
    'src/server-main.ts',
    'src/client-main.ts',
    'src/typed-main.ts',
    'src/typed-server.ts',
    'src/typed-client.ts',
    'src/web-main.ts',
    'src/observe-main.ts',
    'src/observe-inprocess.ts',
  ],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
})
