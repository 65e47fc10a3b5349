import { describe, expect, it } from 'vitest'
import { describeFlags, EXTENSION_FLAGS_MASK, Flags, V1_FLAGS_MASK } from './flags'

describe('Flags', () => {
  it('are one distinct bit each, with the documented values', () => {
    expect(Flags).toEqual({
      REQUEST: 0x01,
      RESPONSE: 0x02,
      STREAM: 0x04,
      STREAM_END: 0x08,
      ERROR: 0x10,
      COMPRESSED: 0x20,
      CONTROL: 0x40,
      METADATA: 0x80,
    })
  })

  it('split into the v1 bits and the extension bits, which together cover the byte', () => {
    const v1 = Flags.REQUEST | Flags.RESPONSE | Flags.STREAM | Flags.STREAM_END | Flags.ERROR
    const extensions = Flags.COMPRESSED | Flags.CONTROL | Flags.METADATA
    expect(V1_FLAGS_MASK).toBe(v1)
    expect(EXTENSION_FLAGS_MASK).toBe(extensions)
    expect(V1_FLAGS_MASK & EXTENSION_FLAGS_MASK).toBe(0)
    expect(V1_FLAGS_MASK | EXTENSION_FLAGS_MASK).toBe(0xff)
  })

  it('describeFlags names every bit set, or NONE', () => {
    expect(describeFlags(0)).toBe('NONE')
    expect(describeFlags(0x05)).toBe('REQUEST|STREAM')
    expect(describeFlags(0x0c)).toBe('STREAM|STREAM_END')
    expect(describeFlags(0xff)).toBe('REQUEST|RESPONSE|STREAM|STREAM_END|ERROR|COMPRESSED|CONTROL|METADATA')
  })
})
