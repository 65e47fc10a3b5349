import { defineConfig, type Options } from 'tsup'

const common: Options = { format: ['esm', 'cjs'], sourcemap: true, target: 'node20', platform: 'node' }

export default defineConfig([
  // One copy of the code behind both entries, in CJS too: internal reaches the classes index exports.
  {
    ...common,
    entry: ['src/index.ts', 'src/internal.ts'],
    splitting: true,
    dts: false,
    // Everything but the declarations, which the two builds below write at the same time.
    clean: ['!**/*.d.{ts,cts,mts}'],
  },
  // Declarations per entry: index.d.ts whole (the API report reads it), internal.d.ts importing from it by name.
  { ...common, entry: ['src/index.ts'], dts: { only: true } },
  { ...common, entry: ['src/internal.ts'], dts: { only: true }, external: ['@srpc/server'] },
])
