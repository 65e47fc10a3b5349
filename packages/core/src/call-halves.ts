import type { FrameId } from '@srpc/protocol'
import type { CallHost } from './call-host'
import type { Extensions } from './extensions'
import { StreamReceiver } from './stream-receiver'
import { StreamSender } from './stream-sender'

/**
 * The sending half of stream `id` on either end: ordered, compressed, credit-aware frames
 * through the call's connection, bounded by its `maxBufferedBytes`.
 */
export function callSender(host: CallHost, id: FrameId, ext: Extensions): StreamSender {
  return new StreamSender(
    ext,
    {
      write: (flags, payload) => host.send(flags, id, payload),
      writable: () => host.writable,
      whenWritable: () => host.whenWritable(),
    },
    host.maxBufferedBytes,
  )
}

/**
 * The receiving half of stream `id` on either end: its messages queue for the application,
 * credit goes back to the peer as they are read (or reading pauses past the high-water mark).
 */
export function callReceiver(host: CallHost, id: FrameId, ext: Extensions): StreamReceiver {
  return new StreamReceiver(ext, {
    highWaterMark: host.streamHighWaterMark,
    pauseReading: () => host.pauseReading(),
    resumeReading: () => host.resumeReading(),
    grant: (bytes) => host.grant(id, bytes),
  })
}
