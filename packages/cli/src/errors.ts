import type { Command } from 'commander'

/**
 * A mistake on the command line: the message says what was wrong, and the command's usage is
 * printed after it. Exit code 2.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError'
  /** The command whose usage to show (set where the error is caught, if not when thrown). */
  command: Command | undefined
}

/** A local failure worth one line and no stack trace (a missing file, a broken certificate set). Exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError'
}

/** The message of an error with the messages of its causes, which often hold the real reason (a TLS failure). */
export function describeError(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    const message = current instanceof Error ? current.message : String(current)
    if (message && !parts.some((part) => part.includes(message))) parts.push(message)
    current = current instanceof Error ? current.cause : undefined
  }
  return parts.join(': ')
}
