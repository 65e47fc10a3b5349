import { defineConfig } from 'tsup'

export default defineConfig([
  {
    // The programmatic API (exit codes, main), for ESM and CommonJS.
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
  },
  {
    // The `srpc` binary: ESM only, with its shebang.
    entry: { bin: 'src/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
  },
])
