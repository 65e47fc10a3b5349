import { FrameDecoder, encodeFrame, Flags, encodeHeader, fromPlatformError } from './dist/index.js'
const f = encodeFrame(Flags.REQUEST, 1, '/health', Buffer.from('hi'))
const d = new FrameDecoder()
d.push(f.subarray(0, 16), () => {})
try { d.end(); console.log('end() after header: no error (BUG)') } catch (e) { console.log('end threw', e.code) }
// flags wrap
console.log('flags 256 ->', encodeFrame(256, 1, '', Buffer.alloc(0))[1])
// NaN limit
const d2 = new FrameDecoder({ maxFrameSize: NaN })
try { d2.push(encodeHeader(0, 1, '', 0xffffffff), () => {}); console.log('NaN maxFrameSize: accepted 4GiB header (BUG)') } catch (e) { console.log(e.code) }
// perf of 1-byte chunks
for (const size of [1 << 16, 1 << 18, 1 << 20]) {
  const big = encodeFrame(Flags.RESPONSE, 1, '', Buffer.alloc(size))
  const d3 = new FrameDecoder()
  const t = performance.now()
  let n = 0
  for (let i = 0; i < big.length; i++) d3.push(big.subarray(i, i + 1), () => n++)
  console.log(size, 'bytes as 1-byte chunks:', (performance.now() - t).toFixed(1), 'ms', n)
}
const ac = new AbortController(); ac.abort()
console.log('DOMException AbortError ->', fromPlatformError(ac.signal.reason, 'x').code)
console.log('timeout ->', fromPlatformError(Object.assign(new Error('t'), {code:'ETIMEDOUT'}), 'x').code)
