import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runInNewContext } from 'node:vm'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

const SOURCE = new URL('../src/index.ts', import.meta.url).pathname

/** What a page that uses typed contracts imports from @srpc/contract. */
const PAGE = `
export { createClient, json, msgpack } from ${JSON.stringify(SOURCE)}
`

/**
 * Bundles `code` as a browser app would (platform browser, minified) into a script that sets
 * `contract`: every dependency inlined, or all but `external` ones.
 */
async function bundle(code: string, external: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'srpc-contract-'))
  const entry = join(dir, 'page.ts')
  writeFileSync(entry, code)
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'iife',
    globalName: 'contract',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    metafile: true,
    external,
  })
  const text = result.outputFiles[0]?.text ?? ''
  return { text, inputs: Object.keys(result.metafile.inputs), gzipped: gzipSync(text, { level: 9 }).length }
}

/** A bare use of the global Buffer (`globalThis.Buffer` and `typeof Buffer` are guarded uses). */
const BARE_BUFFER = /(?<![\w$.])(?<!typeof )Buffer\b/g

/** Each bare Buffer use with some context, for a readable failure. */
function bareBuffers(text: string): string[] {
  return [...text.matchAll(BARE_BUFFER)].map((m) => text.slice(Math.max(0, m.index - 40), m.index + 40))
}

/** Runs the bundle where a page runs it: no Buffer, no require, no process. */
function runInPage(text: string): Record<string, unknown> {
  const page: Record<string, unknown> = { TextEncoder, TextDecoder, console }
  page.globalThis = page
  runInNewContext(`${text}\nglobalThis.contract = contract`, page)
  return page.contract as Record<string, unknown>
}

type PageCodec = { encode(v: unknown): Uint8Array; decode(b: Uint8Array): unknown }

describe('the browser bundle of createClient with the json and msgpack codecs', () => {
  it('has no node: import, no Node package and no bare Buffer, and works without Buffer', async () => {
    const { text, inputs, gzipped } = await bundle(PAGE)
    console.log(`@srpc/contract client-side bundle (createClient, json, msgpack): ${gzipped} B min+gzip`)
    expect(inputs.filter((file) => /node:|\/(client|server|core)\/(src|dist)\//.test(file))).toEqual([])
    expect(text).not.toMatch(/["']node:/)
    expect(text).not.toMatch(/\brequire\(/)
    // msgpackr guards its own Buffer uses with a check for Buffer; ours must have none. Running
    // the whole bundle without a Buffer below covers msgpackr.
    const ours = await bundle(PAGE, ['msgpackr'])
    expect(bareBuffers(ours.text)).toEqual([])

    const loaded = runInPage(text)
    expect(typeof loaded.createClient).toBe('function')
    const value = { text: 'héllo', n: [1, 2], at: 'x' }
    for (const name of ['json', 'msgpack']) {
      const codec = loaded[name] as PageCodec
      const bytes = codec.encode(value)
      // A Uint8Array of the page's realm, not a Buffer.
      expect(Object.prototype.toString.call(bytes)).toBe('[object Uint8Array]')
      expect(Buffer.isBuffer(bytes)).toBe(false)
      expect(codec.decode(bytes)).toEqual(value)
      const hostile = codec.encode({ a: { constructor: { prototype: {} } } })
      expect(() => codec.decode(hostile)).toThrow(/constructor/)
    }
  })

  it('the checks catch a node: import and a use of Buffer', async () => {
    await expect(
      bundle(`import { createHash } from 'node:crypto'\nexport const h = createHash`),
    ).rejects.toThrow()
    const { text } = await bundle(`export const encode = (s: string) => Buffer.from(s)`)
    expect(bareBuffers(text)).toHaveLength(1)
    const loaded = runInPage(text)
    expect(() => (loaded.encode as (s: string) => unknown)('x')).toThrow(/Buffer is not defined/)
  })
})

describe('the types of @srpc/contract', () => {
  it('import neither @srpc/client nor @srpc/server (optional peers: a browser app has neither)', () => {
    const src = new URL('../src/', import.meta.url).pathname
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
      (file) => file.endsWith('.ts') && !file.endsWith('.test.ts'),
    )
    expect(files.length).toBeGreaterThan(5)
    const offenders = files.filter((file) =>
      /from '@srpc\/(client|server)'/.test(readFileSync(join(src, file), 'utf8')),
    )
    expect(offenders).toEqual([])
  })
})
