export { Code, isCode } from './codes'
export {
  type Capabilities,
  ControlKind,
  type ControlMessage,
  decodeControl,
  EXTENSION_VERSION,
  encodeControl,
} from './control'
export { type Deadline, DeadlineScheduler, deadlines } from './deadline-scheduler'
export { describeFlags, EXTENSION_FLAGS_MASK, Flags, V1_FLAGS_MASK } from './flags'
export {
  encodeFrame,
  encodeHeader,
  type Frame,
  type FrameId,
  HEADER_SIZE,
  MAX_TYPE_LENGTH,
  MAX_VALUE_LENGTH,
  normalizeId,
  PROTOCOL_VERSION,
  readId,
  toBuffer,
  typeByteLength,
  writeHeader,
  writeId,
} from './frame'
export { FrameConnection, type FrameConnectionHandlers, type FrameConnectionState } from './frame-connection'
export {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_TYPE_LENGTH,
  FrameDecoder,
  type FrameDecoderOptions,
} from './frame-decoder'
export { cancelledError, MessageQueue, type MessageQueueOptions } from './message-queue'
export {
  DEFAULT_MAX_METADATA_SIZE,
  encodeMetadata,
  MAX_METADATA_ENTRIES,
  type Metadata,
  splitMetadata,
  TIMEOUT_KEY,
} from './metadata'
export { invalidOption, nonNegativeIntOption, parseAddress, positiveIntOption } from './options'
export { decodeErrorValue, encodeErrorValue, fromPlatformError, RpcError } from './rpc-error'
