// Prints the browser bundle size of @srpc/web (min and min+gzip) and fails past the budget.
import { BUDGET, bundle } from './bundle.mjs'

const { minified, gzipped } = await bundle()
const kb = (n) => `${(n / 1024).toFixed(2)} KiB`
console.log(`@srpc/web browser bundle: ${kb(minified)} min, ${kb(gzipped)} min+gzip (budget ${kb(BUDGET)})`)
if (gzipped > BUDGET) {
  console.error('over budget')
  process.exit(1)
}
