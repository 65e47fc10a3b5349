/** A running benchmark server of one target. */
export interface TargetServer {
  readonly port: number
  /** Stops accepting and closes every connection, within `timeoutMs`. */
  close(timeoutMs: number): Promise<void>
}

export type Warn = (message: string) => void
