import { mergeConfig } from 'vitest/config'
import { sharedTestConfig } from '../../vitest.shared.ts'

// The type tests (test/*.test-d.ts) run under vitest's typecheck: each @ts-expect-error must be an error.
export default mergeConfig(sharedTestConfig, {
  test: { typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' } },
})
