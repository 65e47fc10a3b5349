import type { Balancing } from './options'

/** What the balancer looks at on a connection. */
export interface Candidate {
  /** Ready, and below the server's limit on calls in flight. */
  readonly hasCapacity: boolean
  readonly inFlight: number
}

/**
 * Picks the connection for the next call among the ready ones. Both policies skip connections
 * at the server's stream limit and rotate their starting point, so equal candidates take turns.
 * A scan of the (small) array, no allocation: this runs for every call.
 */
export class Picker {
  readonly policy: Balancing
  #cursor = 0

  constructor(policy: Balancing) {
    this.policy = policy
  }

  pick<T extends Candidate>(ready: readonly T[]): T | undefined {
    const n = ready.length
    if (n === 0) return undefined
    const start = this.#cursor % n
    if (this.policy === 'round-robin') {
      for (let i = 0; i < n; i++) {
        const index = (start + i) % n
        const candidate = ready[index]
        if (candidate.hasCapacity) {
          this.#cursor = index + 1
          return candidate
        }
      }
      return undefined
    }
    // least-in-flight: the first candidate with the fewest calls, counting from the cursor.
    let best: T | undefined
    let bestIndex = 0
    let bestLoad = Number.POSITIVE_INFINITY
    for (let i = 0; i < n && bestLoad > 0; i++) {
      const index = (start + i) % n
      const candidate = ready[index]
      if (candidate.inFlight < bestLoad && candidate.hasCapacity) {
        best = candidate
        bestIndex = index
        bestLoad = candidate.inFlight
      }
    }
    if (best !== undefined) this.#cursor = bestIndex + 1
    return best
  }
}
