// Direct replies to client frames, for every part of the hub that answers one: built by the
// protocol's frame builder, counted, logged when they are errors, and sent in frame order
// (each frame took its reply slot on arrival: Session.reply).
import type { Logger } from '../logger.js'
import { Code } from '../protocol/codes.js'
import { encodeFrame, replyFrame } from '../protocol/frames.js'
import type { ServerFrame } from '../protocol/schemas.js'
import type { HubMetrics } from './hub-metrics.js'
import type { Session } from './session.js'

/** Error replies of one connection logged at info; the rest at debug. */
export const INFO_ERROR_LINES = 10

export type ReplyFields = { uid?: string; touid?: string; ref?: string | undefined }

export class Replies {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: HubMetrics | undefined,
  ) {}

  /** Replies to the frame of `slot`; `uid` is the bound uid unless `fields` names another. */
  send(session: Session, slot: number, code: Code, type: string, msg: string, fields: ReplyFields = {}): void {
    const frame = replyFrame(code, type, msg, { uid: session.uid ?? '', ...fields })
    if (code >= 400) {
      // 429, and errors past a connection's first few, at debug: a client that sends malformed
      // frames under the rate limit would otherwise flood the log (one line a frame). The
      // connection's close line counts them all.
      const quiet = code === Code.RATE_LIMITED || ++session.errorReplies > INFO_ERROR_LINES
      this.logger[quiet ? 'debug' : 'info']({ session: session.id, uid: session.uid, code, type: frame.type, reason: msg }, 'error reply')
    }
    this.sendFrame(session, slot, frame)
  }

  /** The frame of `slot` succeeded and gets no reply (typing): later replies need not wait for it. */
  none(session: Session, slot: number): void {
    session.reply(slot, null)
  }

  /** Replies with a frame the caller built (a 201 or 204 with its position or mid). */
  sendFrame(session: Session, slot: number, frame: ServerFrame): void {
    this.metrics?.frameOut(frame.type, frame.code)
    session.reply(slot, encodeFrame(frame))
  }
}
