export { Code, isCode } from './codes'
export {
  type CompressionOptions,
  Compressor,
  DEFAULT_COMPRESSION_LEVEL,
  DEFAULT_COMPRESSION_THRESHOLD,
  decompress,
  negotiateCodec,
  type ResolvedCompressionOptions,
  resolveCompressionOptions,
  SUPPORTED_CODECS,
} from './compression'
export {
  type Capabilities,
  ControlKind,
  type ControlMessage,
  decodeControl,
  EXTENSION_VERSION,
  encodeControl,
} from './control'
export { type Deadline, DeadlineScheduler, deadlines } from './deadline-scheduler'
export {
  ALL_FEATURES,
  announce,
  answer,
  type ExtensionSettings,
  Extensions,
  type Feature,
} from './extensions'
export { describeFlags, EXTENSION_FLAGS_MASK, Flags, V1_FLAGS_MASK } from './flags'
export {
  DEFAULT_INITIAL_WINDOW,
  DEFAULT_MAX_BUFFERED,
  DEFAULT_MAX_WINDOW,
  MESSAGE_OVERHEAD,
  messageCost,
  ReceiveWindow,
  SendWindow,
} from './flow-control'
export {
  checkRoute,
  describeType,
  encodeFrame,
  encodeHeader,
  type Frame,
  type FrameId,
  HEADER_SIZE,
  MAX_TYPE_LENGTH,
  MAX_VALUE_LENGTH,
  normalizeId,
  PROTOCOL_VERSION,
  payloadBytes,
  readId,
  toBuffer,
  typeByteLength,
  writeHeader,
  writeId,
} from './frame'
export {
  FrameConnection,
  type FrameConnectionHandlers,
  type FrameConnectionOptions,
  type FrameConnectionState,
} from './frame-connection'
export {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_TYPE_LENGTH,
  FrameDecoder,
  type FrameDecoderOptions,
} from './frame-decoder'
export { MessageQueue, type MessageQueueOptions } from './message-queue'
export {
  DEFAULT_MAX_METADATA_SIZE,
  encodeMetadata,
  encodeTimeoutBlock,
  MAX_METADATA_ENTRIES,
  type Metadata,
  splitMetadata,
  splitTimeoutOnly,
  TIMEOUT_KEY,
} from './metadata'
export {
  formatMs,
  invalidOption,
  type KeepaliveOptions,
  MAX_INITIAL_WINDOW,
  nonNegativeIntOption,
  parseAddress,
  positiveIntOption,
  resolveKeepalive,
  windowOption,
} from './options'
export { decodeErrorValue, encodeErrorValue, fromPlatformError, RpcError } from './rpc-error'
export { DEFAULT_STREAM_HIGH_WATER_MARK, StreamReceiver, type StreamReceiverHooks } from './stream-receiver'
export { rejected, type SenderOutput, StreamSender } from './stream-sender'
