/** The outcome of one check, as printed. */
export interface CheckResult {
  name: string
  ok: boolean
  detail: string
  ms: number
}

/**
 * Runs one check and prints one line for it the moment it finishes: `✓ name  detail  (ms)`. The check
 * returns a detail line on success and throws to fail; a failed check never stops the others.
 */
export async function check(name: string, run: () => Promise<string>): Promise<CheckResult> {
  const started = performance.now()
  let result: CheckResult
  try {
    const detail = await run()
    result = { name, ok: true, detail, ms: performance.now() - started }
  } catch (err) {
    result = { name, ok: false, detail: describeError(err), ms: performance.now() - started }
  }
  const mark = result.ok ? '✓' : '✗'
  console.log(`${mark} ${name.padEnd(30)} ${result.detail}  (${formatMs(result.ms)})`)
  return result
}

/** Throws a check failure unless `condition` holds. */
export function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message)
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message
  }
  return String(err)
}

/** Prints the one-line summary of a client's checks; returns the exit code (0: all passed). */
export function summarize(results: CheckResult[], started: number): number {
  const failed = results.filter((r) => !r.ok)
  const took = formatMs(performance.now() - started)
  if (failed.length === 0) {
    console.log(`all ${results.length} checks passed in ${took}`)
    return 0
  }
  console.log(
    `${failed.length} of ${results.length} checks failed (${failed.map((r) => r.name).join(', ')}) in ${took}`,
  )
  return 1
}

/** Runs a client's `main` and turns its result (or a crash) into the process exit code. */
export function runClient(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code
    },
    (err: Error) => {
      console.error(`${name}: ${err.message}`)
      process.exitCode = 1
    },
  )
}
