/** One numeric flag: `--name N` or `--name=N`. */
export interface NumberFlag {
  min: number
  max: number
  integer?: boolean
}

/**
 * Parses `--quick`, `--help` and the numeric flags in `spec`. A bare `--` is skipped (package
 * managers pass it through in some versions). Throws an Error naming the bad flag.
 */
export function parseFlags<K extends string>(
  argv: string[],
  spec: Record<K, NumberFlag>,
): { quick: boolean; help: boolean; values: Partial<Record<K, number>> } {
  const values: Partial<Record<K, number>> = {}
  let quick = false
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') continue
    if (arg === '--quick') {
      quick = true
      continue
    }
    if (arg === '--help' || arg === '-h') {
      help = true
      continue
    }
    const eq = arg.indexOf('=')
    const flag = eq > 0 ? arg.slice(0, eq) : arg
    const name = flag.replace(/^--/, '') as K
    if (!flag.startsWith('--') || !Object.hasOwn(spec, name)) throw new Error(`unknown argument ${arg}`)
    const text = eq > 0 ? arg.slice(eq + 1) : argv[++i]
    const value = Number(text)
    const { min, max, integer = true } = spec[name]
    if (
      text === undefined ||
      text === '' ||
      !Number.isFinite(value) ||
      (integer && !Number.isInteger(value))
    ) {
      throw new Error(`${flag} needs a ${integer ? 'whole ' : ''}number, got ${text ?? 'nothing'}`)
    }
    if (value < min || value > max) throw new Error(`${flag} must be from ${min} to ${max}, got ${value}`)
    values[name] = value
  }
  return { quick, help, values }
}
