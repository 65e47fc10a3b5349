/** The thread task of the offload run: keeps a core busy for `ms` milliseconds (at most 1 s). */
export default function spin(ms: number): string {
  const end = performance.now() + Math.min(ms, 1000)
  let n = 0
  while (performance.now() < end) n++
  return `spun ${n}`
}
