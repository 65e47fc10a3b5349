import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

/** Bundles `entry` for a browser: esbuild refuses a node: import there; the output is returned. */
async function browserBundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles[0].text
}

describe('@srpc/core/portable', () => {
  it('bundles for a browser: no node: import, no require(, no Buffer', async () => {
    const code = await browserBundle(new URL('./portable.ts', import.meta.url).pathname)
    expect(code).toContain('DeadlineScheduler')
    expect(code).not.toMatch(/["']node:/)
    expect(code).not.toMatch(/\brequire\(/)
    expect(code).not.toMatch(/\bBuffer\b/)
  })

  it('the check fails for a module that needs Node (the whole of @srpc/core)', async () => {
    await expect(browserBundle(new URL('./index.ts', import.meta.url).pathname)).rejects.toThrow()
  })
})
