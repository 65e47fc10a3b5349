import { defineConfig } from 'tsup'

export default defineConfig({
  // The two parents and the worker processes they fork.
  entry: [
    'src/scale.ts',
    'src/soak.ts',
    'src/server-main.ts',
    'src/scale-client.ts',
    'src/soak-client.ts',
    'src/cluster-bench.ts',
    'src/cluster-server.ts',
    'src/load.ts',
    'src/offload-bench.ts',
    'src/offload-server.ts',
    'src/offload-task.ts',
  ],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
})
