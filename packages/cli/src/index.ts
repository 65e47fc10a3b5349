export {
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  EXIT_NOT_SERVING,
  EXIT_OK,
  EXIT_PARTIAL,
  EXIT_USAGE,
  exitCodeOf,
  RPC_EXIT_CODES,
} from './exit-codes'
export type { Io } from './io'
export { main, VERSION } from './program'
