import * as hdr from 'hdr-histogram-js'

/** Latencies in microseconds, 1 µs to 1 hour at 3 significant digits (HdrHistogram). */
export class Latencies {
  #histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  }) as hdr.JsHistogram

  /** Records one latency given in milliseconds (a performance.now() difference). */
  recordMs(ms: number): void {
    this.#histogram.recordValue(Math.max(1, Math.round(ms * 1000)))
  }

  get count(): number {
    return this.#histogram.totalCount
  }

  /** Percentiles, mean, min and max, in ms (zeros when nothing was recorded). */
  summary(): LatencySummary {
    const h = this.#histogram
    if (h.totalCount === 0) return { min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }
    // HDR answers a percentile with the top of its bucket, which can pass the largest value seen.
    const at = (percentile: number) => Math.min(h.getValueAtPercentile(percentile), h.maxValue) / 1000
    return {
      min: h.minNonZeroValue / 1000,
      mean: h.mean / 1000,
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: h.maxValue / 1000,
    }
  }

  /**
   * `buckets` equal-width bins from the fastest to the slowest call (as ghz draws them), each
   * with its count; the counts add up to `count`.
   */
  bins(buckets: number): LatencyBin[] {
    const h = this.#histogram
    if (h.totalCount === 0) return []
    const min = h.minNonZeroValue
    const max = h.maxValue
    const width = Math.max(1, (max - min) / buckets)
    const bins: LatencyBin[] = Array.from({ length: buckets }, (_, i) => ({
      fromMs: (min + i * width) / 1000,
      toMs: (i === buckets - 1 ? max : min + (i + 1) * width) / 1000,
      count: 0,
    }))
    const values = h.recordedValuesIterator
    values.reset()
    while (values.hasNext()) {
      const step = values.next()
      // HDR keeps equivalent values together; place each group by the value it stands for.
      const value = Math.min(Math.max(h.medianEquivalentValue(step.valueIteratedTo), min), max)
      const index = Math.min(buckets - 1, Math.floor((value - min) / width))
      bins[index].count += step.countAtValueIteratedTo
    }
    return bins
  }
}

export interface LatencySummary {
  min: number
  mean: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

export interface LatencyBin {
  fromMs: number
  toMs: number
  count: number
}
