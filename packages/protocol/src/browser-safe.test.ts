import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// The package must load in a browser: no Node built-in, no CommonJS require, no Buffer.
// The compiler enforces the last one too (tsconfig.json sees no Node typings); this reads the
// syntax tree, so a comment or a string merely mentioning them does not count.
const SRC = import.meta.dirname

/** Every use of a Node-only feature in `text`, as `file:line what`. */
function nodeOnlyUses(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const at = (node: ts.Node) => `${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && node.text === 'Buffer') found.push(`${at(node)} uses Buffer`)
    if (ts.isStringLiteralLike(node) && node.text.startsWith('node:'))
      found.push(`${at(node)} names ${node.text}`)
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') {
      found.push(`${at(node)} calls require(`)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

const sources = readdirSync(SRC).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))

describe('@srpc/protocol is browser-safe', () => {
  it('uses no node: import, require( or Buffer in any source file', () => {
    expect(sources).toContain('frame-decoder.ts')
    expect(sources).toContain('index.ts')
    expect(sources.flatMap((file) => nodeOnlyUses(file, readFileSync(join(SRC, file), 'utf8')))).toEqual([])
  })

  it('the check finds each of them, in code only', () => {
    const sample = [
      `import { isUtf8 } from 'node:buffer'`,
      `const b = Buffer.alloc(1)`,
      `const fs = require('fs')`,
      `// Buffer and require('x') in a comment, 'Buffer' in a string`,
      `export const later = () => import('node:fs')`,
    ].join('\n')
    expect(nodeOnlyUses('sample.ts', sample)).toEqual([
      'sample.ts:1 names node:buffer',
      'sample.ts:2 uses Buffer',
      'sample.ts:3 calls require(',
      'sample.ts:5 names node:fs',
    ])
  })
})
