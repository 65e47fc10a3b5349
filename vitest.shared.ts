import { defineConfig } from 'vitest/config'

// Every package's vitest config extends this one. The JSON report is what .ci/run counts.
export const sharedTestConfig = defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // Every test file must close what it opened (sockets, servers, timers).
    setupFiles: [new URL('./vitest.leaks.ts', import.meta.url).pathname],
  },
})
