/**
 * Frame flags. The low five bits are the reference v1 set and mean the same thing on every
 * peer; the high three are srpc extensions and are only ever sent to a peer that negotiated
 * them (see docs/protocol.md, "Extensions").
 */
export const Flags = {
  REQUEST: 0x01,
  RESPONSE: 0x02,
  STREAM: 0x04,
  STREAM_END: 0x08,
  ERROR: 0x10,
  /** Extension: the value is compressed with the negotiated codec. */
  COMPRESSED: 0x20,
  /** Extension: a control frame (hello, ping, cancel, goaway, window update). */
  CONTROL: 0x40,
  /** Extension: the value starts with a metadata block. */
  METADATA: 0x80,
} as const

/** Bits a plain v1 peer may send. */
export const V1_FLAGS_MASK = 0x1f
/** Bits reserved for extensions; a v1 peer never sets them. */
export const EXTENSION_FLAGS_MASK = 0xe0

export function describeFlags(flags: number): string {
  const names: string[] = []
  for (const [name, bit] of Object.entries(Flags)) if (flags & bit) names.push(name)
  return names.length > 0 ? names.join('|') : 'NONE'
}
