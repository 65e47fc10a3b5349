import type { CompressionSetting } from '../messages'

export type Done = (err: Error | undefined, reply: Buffer | undefined) => void

/** What a connection set is opened for: the raw reference tells its server with the first byte. */
export type Purpose = 'echo' | 'stream' | 'sink'

export interface OpenOptions {
  port: number
  ca: string
  /** Connections in this client; calls are spread over them round-robin. */
  size: number
  purpose: Purpose
  compression: CompressionSetting
}

/** One target's client, reduced to what the scenarios need. */
export interface BenchClient {
  /** A unary echo; `done` is called exactly once. */
  call(request: Buffer, done: Done): void
  /** A server stream of `count` chunks of `size` bytes; resolves when it ended. */
  stream(count: number, size: number, onChunk: (chunk: Buffer) => void): Promise<void>
  /** A bidirectional session: 'echo' answers every message, 'sink' answers once with a summary. */
  openSession(kind: 'echo' | 'sink'): Promise<BenchSession>
  close(): Promise<void>
}

export interface BenchSession {
  /** Sends one message; resolves when the transport can take more. */
  send(message: Buffer): Promise<void>
  /** The next message, or undefined once the server ended its half. */
  receive(): Promise<Buffer | undefined>
  /** Ends our half. */
  end(): void
}

export type OpenClient = (options: OpenOptions) => Promise<BenchClient>
