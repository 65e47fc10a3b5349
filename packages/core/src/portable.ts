/**
 * The parts of @srpc/core that run anywhere (browsers included): no `node:` import, no Buffer in
 * their graph (a test bundles this entry for the browser to prove it). `@srpc/web` builds on it.
 */

export { CallSession, type SessionSource } from './call-session'
export { CallStream, type StreamSource } from './call-stream'
export { type Deadline, DeadlineScheduler, deadlines } from './deadline-scheduler'
