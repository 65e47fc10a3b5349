/** The benchmark's srpc routes, shared by its client and server. */
export const SRPC_ROUTES = {
  echo: '/bench/echo',
  stream: '/bench/stream',
  sessionEcho: '/bench/session-echo',
  sessionSink: '/bench/session-sink',
} as const
