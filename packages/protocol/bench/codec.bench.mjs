// Micro-benchmark of the frame codec. Not a test: it prints numbers, it asserts nothing.
// Build first (`pnpm --filter @srpc/protocol build`), then `pnpm --filter @srpc/protocol bench`.
//
// Every case runs for about CASE_MS of wall time, in interleaved samples after a warm-up, and the
// best sample counts (other load on the machine only ever slows a sample down). The ceiling of each row
// is a plain Buffer.copy of the same bytes, measured in the same run, so the ratio column does
// not depend on the machine.
//
// BENCH_DIST=/abs/path/to/index.js measures another build (say, the last release's) the same way.
const { encodeFrame, Flags, FrameDecoder, typeByteLength, writeHeader } = await import(
  process.env.BENCH_DIST ?? '../dist/index.js'
)

const CASE_MS = Number(process.env.BENCH_CASE_MS ?? 500)
/** Each case is measured in this many samples; the best one counts (other processes only slow us down). */
const SAMPLES = 5
/** Decoder input is cut into chunks of this size, the most a TLS socket hands over per read. */
const READ_SIZE = 16 * 1024
const SIZES = [
  ['64 B', 64],
  ['4 KiB', 4 * 1024],
  ['64 KiB', 64 * 1024],
]
const ROUTE = '/bench.Echo/Call'

let sink = 0

/** Calls `fn` in growing batches until `ms` have passed; returns calls per second. */
function measure(fn, ms) {
  let ops = 0
  let batch = 1
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    for (let i = 0; i < batch; i++) fn()
    ops += batch
    elapsed = performance.now() - start
    if (elapsed < ms / 50) batch *= 2
  }
  return (ops * 1000) / elapsed
}

/**
 * Measures `fns` (a case and its ceiling, or several variants) in interleaved samples, so a
 * burst of load elsewhere hits them alike, after one warm-up sample each. Each gets about
 * CASE_MS in total; returns the best calls per second of each.
 */
function compare(...fns) {
  const sampleMs = CASE_MS / SAMPLES
  for (const fn of fns) measure(fn, sampleMs)
  const best = fns.map(() => 0)
  for (let s = 0; s < SAMPLES; s++) {
    fns.forEach((fn, i) => {
      best[i] = Math.max(best[i], measure(fn, sampleMs))
    })
  }
  return best
}

// What Node code passes to encoders and decoders (@srpc/core does): frames are allocated as
// Buffers, from Node's pool when small, and values that span reads are Buffers like the reads.
const allocBuffer = (size) => Buffer.allocUnsafe(size)

/** The encoded bytes of `count` frames and the same bytes cut into READ_SIZE reads. */
function stream(valueSize, count, id, type = '') {
  const value = Buffer.alloc(valueSize, 0x61)
  const flags = type === '' ? Flags.RESPONSE : Flags.REQUEST
  const frames = []
  for (let i = 0; i < count; i++) frames.push(encodeFrame(flags, id(i), type, value, allocBuffer))
  const bytes = Buffer.concat(frames)
  const reads = []
  for (let at = 0; at < bytes.length; at += READ_SIZE) {
    // Each read is its own allocation, as a socket's would be.
    reads.push(Buffer.from(bytes.subarray(at, at + READ_SIZE)))
  }
  return { bytes, reads, frameSize: frames[0].length }
}

function decodeAll(reads, options = { alloc: allocBuffer }) {
  const decoder = new FrameDecoder(options)
  let n = 0
  const onFrame = (frame) => {
    n += frame.value.length
  }
  for (const read of reads) decoder.push(read, onFrame)
  sink += n
}

function copyAll(reads, target) {
  let at = 0
  for (const read of reads) at += read.copy(target, at)
  sink += at
}

const rows = []
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits })
const mbps = (bytesPerSec) => bytesPerSec / 1e6

function row(operation, size, frameBytes, framesPerSec, ceilingBytesPerSec) {
  const bytesPerSec = framesPerSec * frameBytes
  rows.push([
    operation,
    size,
    fmt(mbps(bytesPerSec)),
    fmt(framesPerSec),
    fmt(mbps(ceilingBytesPerSec)),
    `${fmt((bytesPerSec / ceilingBytesPerSec) * 100)} %`,
  ])
}

for (const [label, size] of SIZES) {
  const value = Buffer.alloc(size, 0x61)
  const frameBytes = encodeFrame(Flags.REQUEST, 1, ROUTE, value).length

  // Encode: one allocation and one copy of the value per frame. Ceiling: copying the frame's
  // bytes into a fresh buffer of the same size (the allocation and copy no encoder can avoid).
  let id = 1
  const source = Buffer.alloc(frameBytes, 0x61)
  const [encodePerSec, copyPerSec] = compare(
    () => {
      const out = encodeFrame(Flags.REQUEST, id++, ROUTE, value, allocBuffer)
      sink += out[1]
    },
    () => {
      const out = Buffer.allocUnsafe(frameBytes)
      source.copy(out)
      sink += out[1]
    },
  )
  row('encode', label, frameBytes, encodePerSec, copyPerSec * frameBytes)

  // Decode: ~1 MiB of back-to-back frames arriving in READ_SIZE reads. Ceiling: copying the
  // same reads into one preallocated buffer.
  const count = Math.max(16, Math.ceil((1024 * 1024) / frameBytes))
  const input = stream(size, count, (i) => i + 1)
  const target = Buffer.allocUnsafe(input.bytes.length)
  const [decodeRuns, copyRuns] = compare(
    () => decodeAll(input.reads),
    () => copyAll(input.reads, target),
  )
  row('decode', label, input.frameSize, decodeRuns * count, copyRuns * input.bytes.length)

  if (size !== 64) continue
  // The same 64 B cases as a browser runs them: encoding into `new Uint8Array` (the default
  // allocator; V8 allocates arrays over 64 bytes outside its heap), and decoding requests whose
  // 16 B route must be read as a string.
  const [plainPerSec, plainCopyPerSec] = compare(
    () => {
      const out = encodeFrame(Flags.REQUEST, id++, ROUTE, value)
      sink += out[1]
    },
    () => {
      const out = Buffer.allocUnsafe(frameBytes)
      source.copy(out)
      sink += out[1]
    },
  )
  row('encode, new Uint8Array', label, frameBytes, plainPerSec, plainCopyPerSec * frameBytes)
  const requests = stream(size, count, (i) => i + 1, ROUTE)
  const requestTarget = Buffer.allocUnsafe(requests.bytes.length)
  const [routeRuns, routeCopyRuns] = compare(
    () => decodeAll(requests.reads),
    () => copyAll(requests.reads, requestTarget),
  )
  row(
    'decode, 16 B route',
    label,
    requests.frameSize,
    routeRuns * count,
    routeCopyRuns * requests.bytes.length,
  )
}

// The header writer on @srpc/core's send path: header and route written into a slab in place
// (the value is copied after it by the caller). Ceiling: copying the same 32 bytes.
const headerRows = []
{
  const slab = Buffer.allocUnsafe(64 * 1024)
  const headerSource = Buffer.alloc(32, 0x61)
  const routes = [
    ['ASCII route, 16 B', ROUTE],
    ['non-ASCII route, 17 B', '/bench.Écho/Call'],
    ['no route', ''],
  ]
  let id = 1
  const writers = routes.map(([, route]) => () => {
    const n = writeHeader(slab, 0, Flags.REQUEST, id++, route, typeByteLength(route), 64)
    sink += n
  })
  const [copyRate, ...rates] = compare(
    () => {
      sink += headerSource.copy(slab, 0)
    },
    ...writers,
  )
  routes.forEach(([label], i) => {
    headerRows.push([label, fmt(rates[i]), `${fmt((rates[i] / copyRate) * 100)} %`])
  })
}

// Id handling, on 64-byte values: ids below 2^53 are numbers, larger ones bigints.
const idRows = []
const ID_CASES = [
  ['number, small (1, 2, 3, …)', (i) => i + 1],
  ['number, near 2^53', (i) => Number.MAX_SAFE_INTEGER - 1_000_000 + i],
  ['bigint, top bit set', (i) => 0x8000_0000_0000_0000n + BigInt(i)],
]
const idValue = Buffer.alloc(64, 0x61)
const ID_STREAM = 16 * 1024
const encoders = []
const decoders = []
for (const [, makeId] of ID_CASES) {
  const ids = Array.from({ length: 1024 }, (_, i) => makeId(i))
  let i = 0
  encoders.push(() => {
    const out = encodeFrame(Flags.RESPONSE, ids[i++ & 1023], '', idValue, allocBuffer)
    sink += out[1]
  })
  const input = stream(64, ID_STREAM, makeId)
  decoders.push(() => decodeAll(input.reads))
}
const encodeRates = compare(...encoders)
const decodeRates = compare(...decoders).map((runs) => runs * ID_STREAM)
ID_CASES.forEach(([label], i) => {
  idRows.push([
    label,
    fmt(encodeRates[i]),
    `${fmt((encodeRates[i] / encodeRates[0]) * 100)} %`,
    fmt(decodeRates[i]),
    `${fmt((decodeRates[i] / decodeRates[0]) * 100)} %`,
  ])
})

function table(header, body) {
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c].length)))
  const line = (cells) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |`
  const rule = `|${widths.map((w, c) => (c === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(header), rule, ...body.map(line)].join('\n')
}

console.log(
  `node ${process.version}, ${process.platform}/${process.arch}; ${CASE_MS} ms per case, best of ${SAMPLES} samples; decoder reads of ${READ_SIZE / 1024} KiB\n`,
)
console.log(table(['operation', 'value', 'MB/s', 'frames/s', 'Buffer.copy MB/s', 'of ceiling'], rows))
console.log()
console.log(table(['writeHeader into a slab', 'headers/s', 'of 32 B copy'], headerRows))
console.log()
console.log(
  table(['id kind (64 B value)', 'encode frames/s', 'vs small', 'decode frames/s', 'vs small'], idRows),
)
if (sink === 0.5) console.log('unreachable; keeps the results alive')
