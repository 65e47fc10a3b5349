import { defineConfig } from 'tsup'

export default defineConfig({
  // The parent and the two worker processes it forks for every cell.
  entry: [
    'src/main.ts',
    'src/server-main.ts',
    'src/client-main.ts',
    'src/observe-main.ts',
    'src/observe-inprocess.ts',
  ],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
})
