/** What the primary and its workers say to each other over cluster IPC; every message has `srpc`. */
export type ToWorker =
  /** Stop taking connections and drain with this grace, then exit 0. */
  | { srpc: 'drain'; timeout: number }
  /** Answer with a `stats` message carrying the same id. */
  | { srpc: 'stats'; id: number }

export type ToPrimary =
  /** The worker's server is listening. */
  | { srpc: 'listening' }
  /** `worker()` threw or returned no listening Server; the worker exits 1 after this. */
  | { srpc: 'failed'; message: string }
  | { srpc: 'stats'; id: number; connections: number; calls: number; active: number; queued: number }

export function isClusterMessage<T extends { srpc: string }>(message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as T).srpc === 'string'
}
