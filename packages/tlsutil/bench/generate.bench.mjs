// How long certificate generation takes, per key type. Run after a build:
//   node bench/generate.bench.mjs [runs]      (default 20 runs after 3 warm-up runs)
// Each row also shows the bare WebCrypto key generation measured in the same run, as the floor that
// X.509 encoding and signing add to; the ratio says how much of the time is the key itself.
import { webcrypto } from 'node:crypto'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { createCertificateAuthority, issueCertificate, selfSigned } from '../dist/index.js'

const RUNS = Number(process.argv[2] ?? 20)
const WARMUP_RUNS = 3
const HOSTS = ['127.0.0.1', 'localhost', '::1']

const KEY_PARAMS = {
  'ecdsa-p256': { name: 'ECDSA', namedCurve: 'P-256' },
  'rsa-2048': {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
}

async function measure(task) {
  for (let i = 0; i < WARMUP_RUNS; i++) await task()
  const samples = []
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now()
    await task()
    samples.push(performance.now() - start)
  }
  samples.sort((a, b) => a - b)
  // Nearest-rank percentiles: with 20 runs, p90 is the 18th fastest.
  const rank = (p) => samples[Math.max(0, Math.ceil(p * samples.length) - 1)]
  return { median: rank(0.5), p90: rank(0.9), min: samples[0], max: samples[samples.length - 1] }
}

async function issueSet(algorithm) {
  const ca = await createCertificateAuthority({ algorithm })
  await Promise.all([
    issueCertificate(ca, { hosts: HOSTS, usage: 'server', algorithm }),
    issueCertificate(ca, { usage: 'client', algorithm }),
  ])
}

const fmt = (ms) => ms.toFixed(2).padStart(8)
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, ${RUNS} runs`)
console.log(
  'task                                    median ms   p90 ms   min ms   max ms   median / bare key',
)
for (const algorithm of ['ecdsa-p256', 'rsa-2048']) {
  const bare = await measure(() =>
    webcrypto.subtle.generateKey(KEY_PARAMS[algorithm], true, ['sign', 'verify']),
  )
  const rows = [
    [`bare key generation (${algorithm})`, bare],
    [`selfSigned (${algorithm})`, await measure(() => selfSigned(HOSTS, { algorithm }))],
    [`CA + server + client (${algorithm})`, await measure(() => issueSet(algorithm))],
  ]
  for (const [name, r] of rows) {
    const ratio = (r.median / bare.median).toFixed(1)
    console.log(
      `${name.padEnd(38)} ${fmt(r.median)} ${fmt(r.p90)} ${fmt(r.min)} ${fmt(r.max)}   ${ratio.padStart(6)}x`,
    )
  }
}
