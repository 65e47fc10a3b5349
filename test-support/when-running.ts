/**
 * A promise a test awaits and a function a handler calls when it starts: a stop (shutdown,
 * close, destroy) must begin with the call running on the server, and a fixed sleep does not
 * promise that on a loaded machine. Shared by the server's and the client's lifecycle tests.
 */
export function whenRunning(): { started: Promise<void>; running: () => void } {
  let running!: () => void
  const started = new Promise<void>((resolve) => {
    running = resolve
  })
  return { started, running }
}
