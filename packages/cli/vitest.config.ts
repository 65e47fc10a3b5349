import { defineConfig, mergeConfig } from 'vitest/config'
import { sharedTestConfig } from '../../vitest.shared.ts'

// Every e2e test here starts the real binary, often several times (a Node process, commander and
// TLS each time: about half a second of CPU). On a busy 2-core CI machine that is seconds per
// test, so the bound is wider than the shared 20 s; each command still has its own deadline.
export default mergeConfig(sharedTestConfig, defineConfig({ test: { testTimeout: 60_000 } }))
