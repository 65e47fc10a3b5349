import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain .mjs helper shared with scripts/size.mjs
import { BUDGET, bundle } from '../scripts/bundle.mjs'

describe('the browser bundle of @srpc/web', () => {
  it(`bundles for the browser with no node: import, within ${BUDGET} bytes min+gzip`, async () => {
    const { code, inputs, minified, gzipped } = await bundle()
    console.log(`@srpc/web browser bundle: ${minified} B min, ${gzipped} B min+gzip (budget ${BUDGET} B)`)
    // esbuild with platform browser fails on a node: import; check the graph and the output too.
    expect(inputs.some((file: string) => file.includes('protocol/dist'))).toBe(true)
    // Of @srpc/core only its portable entry (and the chunk it shares with the Node entry).
    const nodeOnly = (file: string) =>
      /node:|\/client\/|\/server\//.test(file) ||
      (/\/core\//.test(file) && !/\/core\/dist\/(portable|chunk-)/.test(file))
    expect(inputs.filter(nodeOnly)).toEqual([])
    expect(code).not.toMatch(/["']node:/)
    expect(code).not.toMatch(/\brequire\(/)
    expect(code).not.toMatch(/\bBuffer\b/)
    expect(gzipped).toBeLessThanOrEqual(BUDGET)
  })

  it('the check catches a node: import', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = mkdtempSync(join(tmpdir(), 'srpc-web-'))
    const entry = join(dir, 'entry.js')
    writeFileSync(entry, `import { createHash } from 'node:crypto'\nexport const h = createHash`)
    await expect(bundle(entry)).rejects.toThrow()
  })
})
