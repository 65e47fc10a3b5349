import { describe, expect, it } from 'vitest'
import { formatMessage, NotJsonError } from './output'

const bytes = (text: string) => Buffer.from(text)

describe('formatMessage', () => {
  it('auto: JSON pretty (or on one line for streams), text as text, other bytes as hex', () => {
    expect(formatMessage(bytes('{"a":[1]}'), 'auto', false).toString()).toBe('{\n  "a": [\n    1\n  ]\n}\n')
    expect(formatMessage(bytes('{ "a" : [1] }'), 'auto', true).toString()).toBe('{"a":[1]}\n')
    expect(formatMessage(bytes('hi'), 'auto', false).toString()).toBe('hi\n')
    expect(formatMessage(bytes('line\n'), 'auto', false).toString()).toBe('line\n')
    expect(formatMessage(Buffer.from([0xc3, 0x28]), 'auto', false).toString()).toBe('c328\n')
  })

  it('raw keeps the bytes exactly; hex and json add one newline', () => {
    const payload = Buffer.from([0, 255, 10])
    expect(formatMessage(payload, 'raw', false)).toEqual(payload)
    expect(formatMessage(payload, 'hex', false).toString()).toBe('00ff0a\n')
    expect(formatMessage(bytes(' 42 '), 'json', false).toString()).toBe('42\n')
    expect(() => formatMessage(bytes('nope'), 'json', false)).toThrow(NotJsonError)
  })
})
