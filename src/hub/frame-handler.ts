// One connection's frames, in the order they came (Centrifuge's Client): rate → parse and
// validate (the schema, then the bound uid and the message length) → bind, send, join, exit,
// typing, watch or unwatch → reply. Every frame takes its reply slot on arrival, so replies
// keep frame order (a typing frame that succeeded passes its slot without a reply).
import { performance } from 'node:perf_hooks'
import { FrameRateLimit } from '../limits/frame-rate-limit.js'
import type { Logger } from '../logger.js'
import { Close, Code } from '../protocol/codes.js'
import { presenceFrame } from '../protocol/frames.js'
import { lengthRefusal, parseFrame } from '../protocol/parse.js'
import type { BindFrame, ExitFrame, JoinFrame, TypingFrame, WatchFrame } from '../protocol/schemas.js'
import type { MessageStore } from '../store/message-store.js'
import type { Binder } from './bind.js'
import { Feature, wants } from './features.js'
import type { HubMetrics } from './hub-metrics.js'
import type { InFlight } from './in-flight.js'
import type { MessagePipeline } from './pipeline.js'
import type { Receipts } from './receipts.js'
import type { Registry } from './registry.js'
import type { Replies } from './replies.js'
import type { Session } from './session.js'
import type { Typing } from './typing.js'
import type { Watchers } from './watchers.js'

export interface FrameHandlerOptions {
  store: MessageStore
  logger: Logger
  metrics?: HubMetrics | undefined
  maxMessageLength: number
  /** Frames per second per connection; 0 or absent = unlimited. */
  rateLimit?: number | undefined
  /** Token bucket size; default 2 × rateLimit. */
  rateBurst?: number | undefined
  /** Bind frames allowed per connection before it is closed with 1008; absent = unlimited. */
  maxBindAttempts?: number | undefined
  registry: Registry
  binder: Binder
  pipeline: MessagePipeline
  replies: Replies
  inFlight: InFlight
  receipts: Receipts
  typing: Typing
  watchers: Watchers
  /** MAX_WATCHED: uids one connection may watch. */
  maxWatched: number
}

export class FrameHandler {
  private readonly rateLimit: number
  private readonly rateBurst: number
  private readonly maxBindAttempts: number

  constructor(private readonly options: FrameHandlerOptions) {
    this.rateLimit = options.rateLimit ?? 0
    this.rateBurst = options.rateBurst ?? Math.max(1, 2 * this.rateLimit)
    this.maxBindAttempts = options.maxBindAttempts ?? Infinity
  }

  /** A new connection's rate limit; null when frames are not limited. */
  rateFor(): FrameRateLimit | null {
    return this.rateLimit > 0 ? new FrameRateLimit(this.rateLimit, this.rateBurst, performance.now()) : null
  }

  /** One text frame from the client. Rate limited here, once, on arrival. */
  handle(session: Session, data: string): void {
    if (session.closed) return
    const slot = session.reserveReply()
    if (!this.overRate(session, data, slot)) this.process(session, data, slot)
  }

  /** A frame the transport refused before parsing (binary, for one). */
  refuse(session: Session, code: Code, msg: string): void {
    if (session.closed) return
    const slot = session.reserveReply()
    if (!this.overRate(session, '', slot)) this.options.replies.send(session, slot, code, '', msg)
  }

  private process(session: Session, data: string, slot: number): void {
    const { replies, metrics, registry, inFlight } = this.options
    // Closed while frames queued behind its bind were being taken (evicted): drop the rest.
    if (session.closed) return
    if (session.queued !== null) {
      session.queue(data, slot)
      return
    }
    const parsed = parseFrame(data)
    metrics?.frameIn(parsed.ok ? parsed.frame.type : parsed.error.type)
    if (!parsed.ok) {
      const { code, type, ref, msg } = parsed.error
      // A malformed bind is still a bind attempt: the limit counts frames, not good ones.
      if (type === 'bind' && this.tooManyBinds(session)) return
      replies.send(session, slot, code, type, msg, { ref })
      return
    }
    const frame = parsed.frame
    if (registry.closing) {
      replies.send(session, slot, Code.SHUTTING_DOWN, frame.type, 'server is shutting down: reconnect elsewhere', { ref: frame.ref })
      return
    }
    if (frame.type === 'bind') {
      if (!this.tooManyBinds(session)) inFlight.track(this.bind(session, frame, slot))
      return
    }
    if (session.uid === null) {
      replies.send(session, slot, Code.NOT_BOUND, frame.type, 'not bound: send bind first', { ref: frame.ref })
      return
    }
    if (frame.uid !== undefined && frame.uid !== session.uid) {
      replies.send(session, slot, Code.UID_MISMATCH, frame.type, 'uid: differs from the bound uid', { ref: frame.ref })
      return
    }
    switch (frame.type) {
      case 'send': {
        const tooLong = lengthRefusal(frame.msg, this.options.maxMessageLength)
        if (tooLong !== null) {
          replies.send(session, slot, Code.TOO_LONG, 'send', tooLong, { ref: frame.ref })
          return
        }
        inFlight.track(this.options.pipeline.send(session, slot, session.uid, frame))
        return
      }
      case 'join':
        inFlight.track(this.join(session, frame, slot))
        return
      case 'exit':
        this.exit(session, frame, slot)
        return
      case 'typing':
        this.typing(session, frame, slot)
        return
      case 'watch':
        inFlight.track(this.watch(session, frame, slot))
        return
      case 'unwatch':
        // Like watch: a connection that did not ask for presence gets none of its frames.
        if (!wants(session.features, Feature.presence)) {
          replies.send(session, slot, Code.BAD_FRAME, 'unwatch', 'unwatch: needs the presence feature (bind with "features": ["presence"])', { ref: frame.ref })
          return
        }
        this.options.watchers.unwatch(session, frame.touid)
        replies.send(session, slot, Code.UNWATCHED, 'unwatch', 'unwatched', { touid: frame.touid, ref: frame.ref })
        return
    }
  }

  /** The bind, then the frames that queued behind it, in the order they came. */
  private async bind(session: Session, frame: BindFrame, slot: number): Promise<void> {
    await this.options.binder.bind(session, frame, slot)
    for (const { data, slot } of session.takeQueued()) this.process(session, data, slot)
  }

  /** Counts a bind frame; past MAX_BIND_ATTEMPTS closes the connection (1008) and says true. */
  private tooManyBinds(session: Session): boolean {
    if (++session.bindAttempts <= this.maxBindAttempts) return false
    this.options.logger.warn({ session: session.id, attempts: session.bindAttempts }, 'too many bind attempts')
    this.options.registry.evict(session, Close.POLICY_VIOLATION, 'too many bind attempts')
    return true
  }

  /** True when the frame was refused for the rate: 429 (type and ref echoed when readable), or a close. */
  private overRate(session: Session, data: string, slot: number): boolean {
    if (session.rate === null) return false
    const verdict = session.rate.take(performance.now())
    if (verdict === 'ok') return false
    if (verdict === 'abuse') {
      this.options.logger.warn({ session: session.id, uid: session.uid }, 'rate limit ceiling: closing')
      this.options.registry.evict(session, Close.POLICY_VIOLATION, 'rate limit exceeded')
      return true
    }
    const parsed = parseFrame(data)
    const type = parsed.ok ? parsed.frame.type : parsed.error.type
    const ref = parsed.ok ? parsed.frame.ref : parsed.error.ref
    this.options.replies.send(session, slot, Code.RATE_LIMITED, type, 'rate limit exceeded: frame not processed, slow down', { ref })
    return true
  }

  /**
   * Opens the conversation at once, in frame order; the 202 goes out once the store has marked
   * it read (a later frame's reply waits for it: replies keep frame order).
   */
  private async join(session: Session, frame: JoinFrame, slot: number): Promise<void> {
    const { registry, replies } = this.options
    const uid = session.uid!
    // Open first, so that a message arriving while the store marks the rest is read too.
    const previous = session.joined
    const attempt = ++session.joins
    session.joined = frame.touid
    try {
      await Promise.all([this.options.store.markRead(uid, frame.touid), registry.publishJoined(session)])
    } catch (err) {
      this.options.logger.error({ err, session: session.id, uid }, 'store markRead failed')
      // Not joined after all, as the 500 says: back to the conversation open before, unless
      // a later join or exit has moved on already. (Messages that arrived meanwhile were
      // marked read on arrival and stay so.)
      if (attempt === session.joins && session.joined === frame.touid) {
        session.joined = previous
        this.options.inFlight.track(registry.publishJoined(session))
      }
      replies.send(session, slot, Code.INTERNAL, 'join', 'internal error: join again', { ref: frame.ref })
      return
    }
    replies.send(session, slot, Code.JOINED, 'join', 'joined', { uid, touid: frame.touid, ref: frame.ref })
    await this.options.receipts.joined(uid, frame.touid)
  }

  /**
   * Forwarded at most once per pair per second (typing.ts); a frame dropped by that throttle
   * is given back to the rate limit. No reply either way: the frame's slot just passes.
   */
  private typing(session: Session, frame: TypingFrame, slot: number): void {
    if (!this.options.typing.forward(session.uid!, frame.touid)) session.rate?.refund()
    this.options.replies.none(session, slot)
  }

  /** Needs the `presence` feature; answered with the uid's state now (207), then told its changes. */
  private async watch(session: Session, frame: WatchFrame, slot: number): Promise<void> {
    const { replies, watchers, maxWatched } = this.options
    if (!wants(session.features, Feature.presence)) {
      replies.send(session, slot, Code.BAD_FRAME, 'watch', 'watch: needs the presence feature (bind with "features": ["presence"])', { ref: frame.ref })
      return
    }
    if (session.watching?.has(frame.touid) !== true && watchers.count(session) >= maxWatched) {
      replies.send(session, slot, Code.BAD_FRAME, 'watch', `touid: at most ${maxWatched} watched uids per connection (MAX_WATCHED)`, { ref: frame.ref })
      return
    }
    const online = await watchers.watch(session, frame.touid)
    const answer = presenceFrame(frame.touid, session.uid ?? '', online)
    if (frame.ref !== undefined) answer.ref = frame.ref
    replies.sendFrame(session, slot, answer)
  }

  /**
   * Leaves whatever conversation is open; a `touid` in the frame is ignored. Takes effect at
   * once: this node stops marking read now, and while the Redis connection is ready the
   * presence write is on it before the 203 is on the client's (replies go out at the end of
   * the turn), so a message sent after the 203 is normally looked up after it. The 203 itself
   * waits for the replies of earlier frames (a join's waits for the store).
   */
  private exit(session: Session, frame: ExitFrame, slot: number): void {
    const left = session.joined ?? ''
    session.joined = null
    this.options.inFlight.track(this.options.registry.publishJoined(session))
    this.options.replies.send(session, slot, Code.EXITED, 'exit', 'exited', { uid: session.uid ?? '', touid: left, ref: frame.ref })
  }
}
