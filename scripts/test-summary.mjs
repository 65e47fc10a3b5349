// Sums every package's vitest JSON report (test-results/vitest.json) into one line:
// `tests: N passed, N failed[, N skipped]`. Exits 1 if any test failed or no report exists.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
let passed = 0
let failed = 0
let skipped = 0
let reports = 0
for (const group of ['packages', 'apps']) {
  const dir = join(root, group)
  if (!existsSync(dir)) continue
  for (const name of readdirSync(dir)) {
    const file = join(dir, name, 'test-results', 'vitest.json')
    if (!existsSync(file)) continue
    const report = JSON.parse(readFileSync(file, 'utf8'))
    reports++
    passed += report.numPassedTests
    failed += report.numFailedTests
    skipped += report.numPendingTests + report.numTodoTests
    // A file that failed outside its tests (did not load, a hook threw, it leaked handles)
    // counts as one failure even though each of its tests passed.
    for (const suite of report.testResults ?? []) {
      const testFailed = (suite.assertionResults ?? []).some((a) => a.status === 'failed')
      if (suite.status === 'failed' && !testFailed) failed++
    }
  }
}
if (reports === 0) console.error('no vitest report found: did the tests run?')
console.log(`tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
process.exit(failed > 0 || reports === 0 ? 1 : 0)
