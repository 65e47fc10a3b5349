// Bundles the page scripts (src/page/*.ts, with @srpc/web) for the browser into dist/public/.
import { build } from 'esbuild'

await build({
  entryPoints: ['src/page/chat.ts', 'src/page/stream.ts', 'src/page/probe.ts'],
  outdir: 'dist/public',
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  logLevel: 'warning',
})
