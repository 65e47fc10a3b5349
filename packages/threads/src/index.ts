export { Code, RpcError } from '@srpc/protocol'
export {
  type CallLike,
  DEFAULT_TASK_TIMEOUT,
  DEFAULT_THREADS_MAX_QUEUE,
  type RunOptions,
  ThreadPool,
  type ThreadPoolOptions,
} from './thread-pool'
