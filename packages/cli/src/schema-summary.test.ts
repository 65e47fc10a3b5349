import { describe, expect, it } from 'vitest'
import { summarizeSchema, table, truncate } from './schema-summary'

describe('summarizeSchema', () => {
  it('shows objects with optional fields, enums, arrays and unions in one line', () => {
    expect(
      summarizeSchema({
        type: 'object',
        properties: {
          id: { type: 'integer' },
          tags: { type: 'array', items: { type: 'string' } },
          state: { enum: ['on', 'off'] },
        },
        required: ['id'],
      }),
    ).toBe('{id: integer, tags?: string[], state?: "on" | "off"}')
    expect(summarizeSchema({ anyOf: [{ type: 'string' }, { type: 'null' }] })).toBe('string | null')
    expect(summarizeSchema({ type: 'array', items: { enum: [1, 2] } })).toBe('(1 | 2)[]')
    expect(summarizeSchema(undefined)).toBe('-')
    expect(summarizeSchema({})).toBe('any')
  })

  it('stops nesting at two levels', () => {
    const deep = {
      type: 'object',
      properties: { a: { type: 'object', properties: { b: { type: 'object', properties: { c: {} } } } } },
    }
    expect(summarizeSchema(deep)).toBe('{a?: {b?: {…}}}')
  })
})

describe('table', () => {
  it('pads every column but the last', () => {
    expect(
      table([
        ['A', 'BB', 'C'],
        ['aaa', 'b', 'c c'],
      ]),
    ).toBe('A    BB  C\naaa  b   c c')
    expect(truncate('abcdef', 4)).toBe('abc…')
  })
})
