import { TARGETS, type TargetName } from './messages'
import { DEFAULT_REPS, type Mode } from './scenarios'

export interface Args {
  mode: Mode
  reps: number
  only: string[] | undefined
  targets: TargetName[]
  outDir: string | undefined
  pin: boolean
  render: string | undefined
  help: boolean
}

export const USAGE = `usage: node apps/bench/dist/main.js [--quick] [--only a,b1,...] [--reps N] [--targets raw,srpc,grpc] [--out DIR] [--no-pin] [--render FILE]

  --quick        tiny counts and 1 repetition: proves the bench works (exit code), asserts nothing about speed
  --only LIST    scenarios to run: a, b1, b4, c, d, e-pp, e-ow, f-json-off, f-json-on, f-rand-off, f-rand-on, g
                 (a prefix selects a group: b, e, f, f-json)
  --reps N       repetitions per scenario and target (default 3, or 1 with --quick)
  --targets LIST targets to run (default raw,srpc,grpc; ratios need raw)
  --out DIR      where results go (default apps/bench/results)
  --no-pin       do not pin server and client to cores 0 and 1 with taskset
  --render FILE  print the table and rewrite the Markdown and SVG of a results JSON; measures nothing`

export function parseArgs(argv: string[]): Args {
  const args: Args = {
    mode: 'full',
    reps: 0,
    only: undefined,
    targets: [...TARGETS],
    outDir: undefined,
    pin: true,
    render: undefined,
    help: false,
  }
  const list = (value: string | undefined, flag: string) => {
    if (!value || value.startsWith('--')) throw new Error(`${flag} needs a value`)
    return value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined]
    const value = () => inline ?? argv[++i]
    switch (flag) {
      case '--quick':
        args.mode = 'quick'
        break
      case '--only':
        args.only = list(value(), '--only')
        break
      case '--reps': {
        const n = Number(value())
        if (!Number.isInteger(n) || n < 1 || n > 50)
          throw new Error('--reps must be a whole number from 1 to 50')
        args.reps = n
        break
      }
      case '--targets': {
        const names = list(value(), '--targets')
        for (const name of names) {
          if (!(TARGETS as readonly string[]).includes(name))
            throw new Error(`--targets: unknown target "${name}"`)
        }
        args.targets = TARGETS.filter((t) => names.includes(t))
        break
      }
      case '--out':
        args.outDir = value()
        if (!args.outDir) throw new Error('--out needs a directory')
        break
      case '--render':
        args.render = value()
        if (!args.render) throw new Error('--render needs a results JSON file')
        break
      case '--no-pin':
        args.pin = false
        break
      case '--help':
      case '-h':
        args.help = true
        break
      default:
        throw new Error(`unknown argument "${arg}"`)
    }
  }
  if (args.reps === 0) args.reps = DEFAULT_REPS[args.mode]
  return args
}
