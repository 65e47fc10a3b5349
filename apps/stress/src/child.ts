import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** What a parent sends a child: a request the child answers once, matched by `id`. */
export interface Request {
  id: number
  type: string
  body: unknown
}

/** A child's answer to one request. */
export type Reply = { id: number; ok: true; body: unknown } | { id: number; ok: false; error: string }

const LIFETIME_ENV = 'SRPC_STRESS_LIFETIME_MS'
const WORKER_ARGS_ENV = 'SRPC_STRESS_WORKER_ARGS'
/** How long a child waits for its parent to stop it before giving up on its own. */
const ORPHAN_GRACE_MS = 2000

/**
 * A forked worker process with a request/answer channel over IPC. Every request has a time
 * limit, and the process is reaped (killed by its pid if it does not exit) when we are done.
 */
export class Worker {
  readonly name: string
  readonly process: ChildProcess
  readonly exited: Promise<number>
  #nextId = 1
  #waiting = new Map<number, { resolve: (body: unknown) => void; reject: (err: Error) => void }>()
  #exitCode: number | undefined

  /** `lifetimeMs`: the child exits by itself after this long, whatever happens to us. */
  constructor(name: string, entry: string, options: { lifetimeMs: number; nodeArgs?: string[] }) {
    this.name = name
    const script = fileURLToPath(new URL(`./${entry}.js`, import.meta.url))
    this.process = fork(script, [], {
      // SRPC_STRESS_WORKER_ARGS adds Node flags to every worker, e.g. "--cpu-prof --cpu-prof-dir=prof".
      execArgv: [
        ...(options.nodeArgs ?? []),
        ...(process.env[WORKER_ARGS_ENV]?.split(' ').filter(Boolean) ?? []),
      ],
      env: { ...process.env, [LIFETIME_ENV]: String(Math.ceil(options.lifetimeMs)) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.process.on('message', (message: Reply) => {
      const waiter = this.#waiting.get(message.id)
      if (!waiter) return
      this.#waiting.delete(message.id)
      if (message.ok) waiter.resolve(message.body)
      else waiter.reject(new Error(`${this.name}: ${message.error}`))
    })
    this.exited = new Promise((resolve) => {
      const ended = (exitCode: number, error: Error) => {
        if (this.#exitCode !== undefined) return
        this.#exitCode = exitCode
        for (const waiter of this.#waiting.values()) waiter.reject(error)
        this.#waiting.clear()
        resolve(exitCode)
      }
      this.process.once('exit', (code, signal) =>
        ended(
          code ?? (signal ? 128 : 1),
          new Error(`${this.name} exited (code ${code}, signal ${signal}) before answering`),
        ),
      )
      // A fork that fails emits 'error' and never 'exit'; other errors (a failed kill) are reported.
      this.process.on('error', (err) => {
        if (this.process.pid === undefined)
          ended(1, new Error(`${this.name} could not start: ${err.message}`))
        else console.error(`${this.name}: ${err.message}`)
      })
    })
  }

  get pid(): number | undefined {
    return this.process.pid
  }

  /** Sends a request; rejects if the child fails it, exits, or does not answer within `timeoutMs`. */
  request<T>(type: string, body: unknown, timeoutMs: number): Promise<T> {
    if (this.#exitCode !== undefined || !this.process.connected) {
      const how =
        this.#exitCode === undefined ? 'its IPC channel is closed' : `exited with code ${this.#exitCode}`
      return Promise.reject(new Error(`${this.name} is not running (${how})`))
    }
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(new Error(`${this.name}: no answer to ${type} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as T)
        },
        reject: (err) => {
          clearTimeout(timer)
          reject(err)
        },
      })
      this.process.send({ id, type, body } satisfies Request, (err) => {
        if (!err) return
        const waiter = this.#waiting.get(id)
        this.#waiting.delete(id)
        waiter?.reject(new Error(`${this.name}: cannot send ${type}: ${err.message}`))
      })
    })
  }

  /** Closes the IPC channel (the child exits on its own), then kills the child by its pid if it lingers. */
  async reap(timeoutMs: number): Promise<number> {
    if (this.#exitCode !== undefined) return this.#exitCode
    if (this.process.connected) this.process.disconnect()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.process.kill('SIGKILL')
        resolve()
      }, timeoutMs)
    })
    await Promise.race([this.exited, late])
    clearTimeout(timer)
    return this.exited
  }
}

type Handler = (body: never) => unknown | Promise<unknown>

/**
 * The child's side: answers the parent's requests with `handlers`, and exits when the parent
 * goes away (closed channel) or when `lifetimeMs` runs out, so that no worker outlives a run.
 */
export function serveParent(handlers: Record<string, Handler>, onExit?: () => Promise<void>): void {
  const lifetimeMs = Number(process.env[LIFETIME_ENV])
  if (!process.send || !(lifetimeMs > 0)) {
    throw new Error('this script is a worker: it is started by scale.js or soak.js')
  }
  const reply = (message: Reply) => {
    if (process.connected) process.send!(message)
  }
  process.on('message', (message: Request) => {
    const handler = handlers[message.type]
    if (!handler) {
      reply({ id: message.id, ok: false, error: `unknown request ${message.type}` })
      return
    }
    Promise.resolve()
      .then(() => handler(message.body as never))
      .then(
        (body) => reply({ id: message.id, ok: true, body: body ?? null }),
        (err) => reply({ id: message.id, ok: false, error: errorText(err) }),
      )
  })
  const leave = (code: number) => {
    const timer = setTimeout(() => process.exit(code), ORPHAN_GRACE_MS)
    timer.unref()
    Promise.resolve(onExit?.())
      .catch(() => {})
      .finally(() => process.exit(code))
  }
  process.on('disconnect', () => leave(0))
  const limit = setTimeout(() => {
    console.error(`worker ${process.pid}: lifetime of ${lifetimeMs} ms exceeded, exiting`)
    leave(3)
  }, lifetimeMs)
  limit.unref()
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return code === undefined ? err.message : `${String(code)}: ${err.message}`
  }
  return String(err)
}
