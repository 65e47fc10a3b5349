export { Code, isCode } from './codes'
export {
  type Capabilities,
  ControlKind,
  type ControlMessage,
  decodeControl,
  EXTENSION_VERSION,
  encodeControl,
} from './control'
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
  type Alloc,
  type ByteFactory,
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
  payloadBytesWith,
  readId,
  toBytes,
  typeByteLength,
  writeHeader,
  writeId,
} from './frame'
export {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_MAX_TYPE_LENGTH,
  FrameDecoder,
  type FrameDecoderOptions,
} from './frame-decoder'
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
  MAX_INITIAL_WINDOW,
  nonNegativeIntOption,
  positiveIntOption,
  windowOption,
} from './options'
export { decodeErrorValue, encodeErrorValue, protocolError, RpcError } from './rpc-error'
