/** The processes the cluster and offload runs start: a server printing JSON events, and a load generator. */
import { type ChildProcess, fork, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { LoadSpec, WindowResult } from './load'
import { ms, sleep } from './stats'

export const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))

export interface Event {
  event: string
  at: number
  [key: string]: unknown
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A server program (`script` in dist/) that prints one JSON event per line on stdout. */
export class ServerProcess {
  readonly child: ChildProcess
  readonly events: Event[] = []
  readonly exited: Promise<unknown>

  constructor(script: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [here(script)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let buffer = ''
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        this.events.push(JSON.parse(buffer.slice(0, i)))
        buffer = buffer.slice(i + 1)
      }
    })
    this.exited = new Promise((resolve) => this.child.once('exit', resolve))
  }

  async next(name: string, ms = 30_000, from = 0): Promise<Event> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const found = this.events.slice(from).find((e) => e.event === name)
      if (found) return found
      if (this.child.exitCode !== null) break
      await sleep(20)
    }
    throw new Error(`server process: no ${name} event within ${ms} ms`)
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM')
    const late = setTimeout(() => this.child.kill('SIGKILL'), 15_000)
    await this.exited
    clearTimeout(late)
  }
}

export class Load {
  readonly child = fork(here('./load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  #ready = this.#once('ready')

  #once(type: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: { type: string }) => {
        if (m.type !== type) return
        this.child.off('message', onMessage)
        resolve(m as Record<string, unknown>)
      }
      this.child.on('message', onMessage)
      this.child.once('exit', (code) => reject(new Error(`load process exited (${code}) before ${type}`)))
    })
  }

  async run(spec: LoadSpec): Promise<{ started: number; ended: number }> {
    await this.#ready
    const done = this.#once('done')
    this.child.send({ type: 'run', spec })
    return (await done) as unknown as { started: number; ended: number }
  }

  async window(from: number, to: number): Promise<WindowResult[]> {
    const answer = this.#once('window')
    this.child.send({ type: 'window', from, to })
    return (await answer).results as WindowResult[]
  }

  stop(): void {
    if (this.child.connected) this.child.send({ type: 'exit' })
  }
}

export const HEADER = ['run', 'calls', 'failed', 'calls/s', 'p50', 'p99', 'max']

export const row = (label: string, r: WindowResult) => [
  label,
  String(r.calls),
  String(r.failed),
  r.callsPerSec.toFixed(0),
  ms(r.p50),
  ms(r.p99),
  ms(r.max),
]
