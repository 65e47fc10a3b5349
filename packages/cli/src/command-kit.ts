import { Command } from 'commander'
import { addressAndRoute, type ConnectionFlags, openPool, parseMetadata } from './connection'
import { MAX_TIMEOUT, parseDuration } from './duration'
import { UsageError } from './errors'
import type { Io } from './io'
import { warnTo } from './io'
import { describeRoute, type ReflectedRoute } from './reflection'

/** How long a reflection lookup before a call may take. */
export const REFLECTION_TIMEOUT = 5000

/** Adds a one-line example block to a command's --help. */
export function examples(command: Command, lines: readonly string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`)
}

/** What a command needs from its parsed arguments to talk to one route. */
export interface RouteTarget {
  address: string
  route: string
  metadata: ReturnType<typeof parseMetadata>
}

export function routeTarget(
  first: string | undefined,
  second: string | undefined,
  flags: ConnectionFlags,
  io: Io,
): RouteTarget {
  const { address, route } = addressAndRoute(first, second, io.env, true)
  return { address, route, metadata: parseMetadata(flags.header) }
}

export function optionalTimeout(raw: string | undefined): number | undefined {
  return raw === undefined ? undefined : parseDuration('--timeout', raw, MAX_TIMEOUT)
}

/**
 * Opens the pool and, unless --no-reflect, asks reflection about the route (undefined when the
 * server has no reflection or does not list it).
 */
export async function connectForRoute(
  target: RouteTarget,
  flags: ConnectionFlags & { reflect?: boolean },
  command: Command,
  io: Io,
) {
  const pool = await openPool(target.address, flags, command, warnTo(io))
  let info: ReflectedRoute | undefined
  try {
    if (flags.reflect !== false) info = await describeRoute(pool, target.route, REFLECTION_TIMEOUT)
  } catch (err) {
    await pool.destroy()
    throw err
  }
  return { pool, info }
}

/**
 * A command's action: runs `fn`, keeps its exit code in `io.exitCode`, and ties a usage error to
 * the command it came from so its usage can be printed.
 */
export function act<A extends unknown[]>(io: Io, fn: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    try {
      io.exitCode = await fn(...args)
    } catch (err) {
      if (err instanceof UsageError && err.command === undefined) {
        err.command = args.find((arg): arg is Command => arg instanceof Command)
      }
      throw err
    }
  }
}
