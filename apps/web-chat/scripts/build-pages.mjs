// Bundles the page scripts (src/page/*.ts, with @srpc/web and @srpc/contract) for the browser into
// dist/public/, and prints the size of the chat page.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

/**
 * msgpackr (behind @srpc/contract's msgpack codec) does not declare itself free of side effects,
 * so a bundler keeps all of it even where, as here, only JSON and bytes are used: about 12 KB
 * min+gzip. It has none that matter, so tell esbuild; a page that does use msgpack keeps it.
 */
const msgpackrHasNoSideEffects = {
  name: 'msgpackr-has-no-side-effects',
  setup(bundler) {
    bundler.onResolve({ filter: /^msgpackr$/ }, async (args) => {
      if (args.pluginData === 'msgpackr') return undefined
      const { resolveDir, kind } = args
      const resolved = await bundler.resolve(args.path, { resolveDir, kind, pluginData: 'msgpackr' })
      return { ...resolved, sideEffects: false }
    })
  },
}

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
  plugins: [msgpackrHasNoSideEffects],
})

const chat = readFileSync('dist/public/chat.js')
console.log(
  `web-chat page (chat.js: @srpc/web, @srpc/contract, valibot): ${chat.length} B min, ${gzipSync(chat, { level: 9 }).length} B min+gzip`,
)
