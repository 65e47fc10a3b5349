import { Code, RpcError } from '@srpc/protocol'

/**
 * Exit codes of `srpc`, stable from one release to the next so scripts can branch on them.
 * Failures of a call exit with 64 + the gRPC number of its code (as grpcurl does), so one table
 * serves users of both tools; PROTOCOL_ERROR, srpc's own, comes after UNAUTHENTICATED.
 */
export const EXIT_OK = 0
/** A local failure: a file that cannot be read, a certificate folder that is broken. */
export const EXIT_FAILURE = 1
/** The command line was wrong (unknown option, missing argument, bad value); usage is printed. */
export const EXIT_USAGE = 2
/** `srpc health`: the service answered NOT_SERVING (or SERVICE_UNKNOWN while watching). */
export const EXIT_NOT_SERVING = 3
/** Some operations failed and the rest succeeded: `srpc bench` with failed calls, `srpc ping` with lost pings. */
export const EXIT_PARTIAL = 4
/** Stopped by Ctrl-C (SIGINT), as shells report it (128 + 2). */
export const EXIT_INTERRUPTED = 130

/** The exit code of a call that failed with each code. */
export const RPC_EXIT_CODES: Readonly<Record<Code, number>> = Object.freeze({
  [Code.CANCELLED]: 65,
  [Code.UNKNOWN]: 66,
  [Code.INVALID_ARGUMENT]: 67,
  [Code.DEADLINE_EXCEEDED]: 68,
  [Code.NOT_FOUND]: 69,
  [Code.ALREADY_EXISTS]: 70,
  [Code.PERMISSION_DENIED]: 71,
  [Code.RESOURCE_EXHAUSTED]: 72,
  [Code.FAILED_PRECONDITION]: 73,
  [Code.ABORTED]: 74,
  [Code.OUT_OF_RANGE]: 75,
  [Code.UNIMPLEMENTED]: 76,
  [Code.INTERNAL]: 77,
  [Code.UNAVAILABLE]: 78,
  [Code.DATA_LOSS]: 79,
  [Code.UNAUTHENTICATED]: 80,
  [Code.PROTOCOL_ERROR]: 81,
})

/** The exit code for an error: its RpcError code's, or EXIT_FAILURE for anything else. */
export function exitCodeOf(error: unknown): number {
  if (RpcError.is(error)) return RPC_EXIT_CODES[error.code] ?? EXIT_FAILURE
  return EXIT_FAILURE
}
