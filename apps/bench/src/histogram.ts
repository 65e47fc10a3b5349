import * as hdr from 'hdr-histogram-js'

/** Latencies in microseconds, 1 µs to 2 minutes at 3 significant digits (HdrHistogram). */
export class LatencyRecorder {
  #histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  })

  /** Records one latency given in milliseconds (performance.now() differences). */
  recordMs(ms: number): void {
    this.#histogram.recordValue(Math.max(1, Math.round(ms * 1000)))
  }

  get count(): number {
    return this.#histogram.totalCount
  }

  summary(): { p50Us: number; p90Us: number; p99Us: number; maxUs: number } {
    const h = this.#histogram
    return {
      p50Us: h.getValueAtPercentile(50),
      p90Us: h.getValueAtPercentile(90),
      p99Us: h.getValueAtPercentile(99),
      maxUs: h.maxValue,
    }
  }
}
