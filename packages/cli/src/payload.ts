import { readFile } from 'node:fs/promises'
import { CliError, describeError } from './errors'

/** Bound on a payload read from a file or stdin: the protocol's frames are far smaller anyway. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024

/**
 * The request payload of `-d`: the text itself, `@file` for a file's bytes, `-` for stdin's.
 * No `-d` is an empty payload.
 */
export async function readPayload(data: string | undefined, stdin: NodeJS.ReadableStream): Promise<Buffer> {
  if (data === undefined) return Buffer.alloc(0)
  if (data === '-') return readAll(stdin, 'stdin')
  if (data.startsWith('@')) {
    const path = data.slice(1)
    try {
      const bytes = await readFile(path)
      if (bytes.length > MAX_PAYLOAD_BYTES)
        throw new CliError(`${path} is larger than ${MAX_PAYLOAD_BYTES} bytes`)
      return bytes
    } catch (err) {
      if (err instanceof CliError) throw err
      throw new CliError(`cannot read the payload file ${path}: ${describeError(err)}`)
    }
  }
  return Buffer.from(data, 'utf8')
}

async function readAll(stream: NodeJS.ReadableStream, name: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += bytes.length
    if (size > MAX_PAYLOAD_BYTES) throw new CliError(`${name} gave more than ${MAX_PAYLOAD_BYTES} bytes`)
    chunks.push(bytes)
  }
  return Buffer.concat(chunks)
}
