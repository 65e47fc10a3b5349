import type { TextMapGetter, TextMapSetter } from '@opentelemetry/api'

/** Writes trace context (`traceparent`, `tracestate`) into a call's outgoing metadata. */
export const metadataSetter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    carrier[key] = value
  },
}

/** Reads trace context from the metadata a call arrived with. */
export const metadataGetter: TextMapGetter<Readonly<Record<string, string>>> = {
  keys(carrier) {
    return Object.keys(carrier)
  },
  get(carrier, key) {
    return carrier[key]
  },
}
