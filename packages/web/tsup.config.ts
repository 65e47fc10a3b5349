import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  // Browser-safe: no Node built-ins, so the same build loads in a browser and in Node 22+.
  target: 'es2022',
  platform: 'neutral',
})
