import { UsageError } from './errors'

/**
 * How a reply is printed: `auto` shows JSON pretty-printed (one line per chunk for streams),
 * other valid UTF-8 as text and anything else as hex; `raw` writes the bytes as received;
 * `json` requires JSON and writes it on one line (for jq); `hex` writes lowercase hex.
 */
export type OutputMode = 'auto' | 'raw' | 'json' | 'hex'

export const OUTPUT_MODES: readonly OutputMode[] = ['auto', 'raw', 'json', 'hex']

export function parseOutputMode(raw: string): OutputMode {
  if ((OUTPUT_MODES as readonly string[]).includes(raw)) return raw as OutputMode
  throw new UsageError(`--output must be one of ${OUTPUT_MODES.join(', ')}, got ${JSON.stringify(raw)}`)
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** The bytes as text if they are valid UTF-8, else undefined. */
export function utf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}

/** The parsed JSON value if the bytes are JSON text, else undefined (`null` parses to null). */
export function parseJson(bytes: Uint8Array): { value: unknown } | undefined {
  const text = utf8(bytes)
  if (text === undefined || text.trim() === '') return undefined
  try {
    return { value: JSON.parse(text) }
  } catch {
    return undefined
  }
}

/**
 * One message as it should be written, newline included unless raw. `oneLine` keeps JSON on a
 * single line (stream chunks and session messages are one per line).
 */
export function formatMessage(bytes: Uint8Array, mode: OutputMode, oneLine: boolean): Buffer {
  switch (mode) {
    case 'raw':
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    case 'hex':
      return Buffer.from(`${Buffer.from(bytes).toString('hex')}\n`)
    case 'json': {
      const json = parseJson(bytes)
      if (json === undefined) throw new NotJsonError(bytes.length)
      return Buffer.from(`${JSON.stringify(json.value)}\n`)
    }
    case 'auto': {
      const json = parseJson(bytes)
      if (json !== undefined) return Buffer.from(`${JSON.stringify(json.value, null, oneLine ? 0 : 2)}\n`)
      const text = utf8(bytes)
      if (text !== undefined) return Buffer.from(text.endsWith('\n') ? text : `${text}\n`)
      return Buffer.from(`${Buffer.from(bytes).toString('hex')}\n`)
    }
  }
}

/** `--output json` and a reply that is not JSON. */
export class NotJsonError extends Error {
  override readonly name = 'NotJsonError'
  constructor(length: number) {
    super(`the reply (${length} bytes) is not JSON; use --output auto, raw or hex`)
  }
}
