// Bundles @srpc/web for a browser with esbuild, as an application would (minified, every
// dependency inlined, platform browser), and measures it. Shared by the size script and the test.
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

/** The size budget of the client without schema libraries, min+gzip bytes (issue: ≤ 15 KB). */
export const BUDGET = 15 * 1024

/** Bundles `entry` (default: the package's built ESM) and returns its text and sizes. */
export async function bundle(entry = new URL('../dist/index.js', import.meta.url).pathname) {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    metafile: true,
  })
  const code = result.outputFiles[0].text
  return {
    code,
    inputs: Object.keys(result.metafile.inputs),
    minified: Buffer.byteLength(code),
    gzipped: gzipSync(code, { level: 9 }).length,
  }
}
