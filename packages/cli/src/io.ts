import { EXIT_INTERRUPTED } from './exit-codes'

/** The process streams a command reads and writes; tests of the package run the real binary. */
export interface Io {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  env: NodeJS.ProcessEnv
  /** Set by the command that ran. */
  exitCode?: number
}

export function processIo(): Io {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env }
}

/** Writes; when the stream's buffer is full, waits for it to drain (or fail). */
export function write(stream: NodeJS.WritableStream, data: string | Uint8Array): Promise<void> {
  if (stream.write(data)) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      stream.off('drain', done)
      stream.off('error', done)
      stream.off('close', done)
      if (err) reject(err)
      else resolve()
    }
    stream.once('drain', done)
    stream.once('error', done)
    stream.once('close', done)
  })
}

/** A line on stderr (for warnings and progress notes: never mixed into stdout, which scripts read). */
export function warnTo(io: Io): (line: string) => void {
  return (line) => {
    io.stderr.write(`srpc: ${line}\n`)
  }
}

/**
 * Ctrl-C as an AbortSignal for the length of one command: the first SIGINT aborts it (the command
 * cancels its call and reports), a second one exits at once with 130.
 */
export function interruptSignal(): { signal: AbortSignal; interrupted: () => boolean; dispose: () => void } {
  const controller = new AbortController()
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED)
    controller.abort()
  }
  process.on('SIGINT', onSigint)
  return {
    signal: controller.signal,
    interrupted: () => controller.signal.aborted,
    dispose: () => process.off('SIGINT', onSigint),
  }
}
