// `bind`: makes a connection user X. Checks the token, registers the session (newest bind
// wins), answers 201 with the user's position, then replays what the user has not seen and
// the live messages held meanwhile. Frames that arrive during all this wait behind it
// (Session.queue); the frame handler takes them once bind() resolves.
import { AuthError, type TokenVerifier } from '../auth/token-verifier.js'
import type { Logger } from '../logger.js'
import { Code } from '../protocol/codes.js'
import { replyFrame } from '../protocol/frames.js'
import type { BindFrame } from '../protocol/schemas.js'
import type { MessageStore } from '../store/message-store.js'
import type { BacklogSender } from './backlog.js'
import { acceptFeatures, Feature, wants } from './features.js'
import type { HubMetrics } from './hub-metrics.js'
import type { MessagePipeline } from './pipeline.js'
import type { Receipts } from './receipts.js'
import type { Registry } from './registry.js'
import type { Replies } from './replies.js'
import type { Session } from './session.js'

const AUTH_MESSAGES: Record<AuthError['reason'], string> = {
  missing: 'token required',
  invalid: 'invalid token',
  expired: 'token expired',
  'not-yet-valid': 'token not valid yet (nbf)',
  'wrong-issuer': 'wrong token issuer',
  'wrong-audience': 'wrong token audience',
  'wrong-subject': 'token is for another uid',
}

const maxMid = (a: string, b: string): string => (a.length !== b.length ? (a.length > b.length ? a : b) : a > b ? a : b)

export interface BindOptions {
  store: MessageStore
  /** MAX_MESSAGE_LENGTH, told to clients that asked for features. */
  maxMessageLength: number
  logger: Logger
  metrics?: HubMetrics | undefined
  /** Checks the bind token; absent or null = open mode, bind trusts `uid`. */
  verifier?: TokenVerifier | null | undefined
  registry: Registry
  pipeline: MessagePipeline
  backlog: BacklogSender
  replies: Replies
  receipts: Receipts
}

export class Binder {
  constructor(private readonly options: BindOptions) {}

  async bind(session: Session, frame: BindFrame, slot: number): Promise<void> {
    const { registry, replies, logger } = this.options
    if (session.uid !== null) {
      replies.send(session, slot, Code.ALREADY_BOUND, 'bind', `already bound as ${session.uid}`, { ref: frame.ref, uid: session.uid })
      return
    }
    // Later frames wait until the bind is answered: clients send bind and go on at once.
    session.beginBind()
    try {
      // After the await, the connection may be gone: the token check took time, or the bind was
      // still queued when the socket closed (the close runs what waits, then forgets the
      // session). Registering it then would leave a ghost online with no socket.
      if ((await this.authenticate(session, frame, slot)) && !session.closed) {
        const features = acceptFeatures(frame.features)
        session.uid = frame.uid
        session.features = features.mask
        await registry.register(session)
        await this.answer(session, frame, slot, features.echo)
      } else {
        session.takeHeld()
      }
    } catch (err) {
      logger.error({ err, session: session.id, uid: frame.uid }, 'bind failed')
      registry.unregister(session)
      session.uid = null
      session.features = 0
      session.signalsOn = false
      session.takeHeld()
      // Failed after its 201 (the replay): a second reply, in the order of now.
      const errorSlot = session.hasReplied(slot) ? session.reserveReply() : slot
      replies.send(session, errorSlot, Code.INTERNAL, 'bind', 'internal error: bind again', { ref: frame.ref })
    }
  }

  /** True when bind may go on: no verifier, or a valid token for this uid (else 406 sent). */
  private async authenticate(session: Session, frame: BindFrame, slot: number): Promise<boolean> {
    const { verifier } = this.options
    if (verifier === undefined || verifier === null) return true
    try {
      await verifier.verify(frame.token, frame.uid)
    } catch (err) {
      if (!(err instanceof AuthError)) throw err
      this.options.logger.info({ session: session.id, uid: frame.uid, reason: err.reason }, 'bind refused')
      // uid stays "": the connection is not bound.
      const msg = `authentication failed: ${AUTH_MESSAGES[err.reason]}`
      this.options.replies.send(session, slot, Code.AUTH_FAILED, 'bind', msg, { ref: frame.ref })
      return false
    }
    return true
  }

  /** 201, then the backlog, then the live messages held meanwhile that it did not carry. */
  private async answer(session: Session, frame: BindFrame, slot: number, features: string[] | undefined): Promise<void> {
    const uid = frame.uid
    const { store } = this.options
    const carbons = wants(session.features, Feature.carbons)
    // With carbons the position covers what the user sent from other devices too.
    const head = carbons ? maxMid(...(await Promise.all([store.headMid(uid), store.sentHeadMid(uid)]))) : await store.headMid(uid)
    const reset = frame.since !== undefined && BigInt(frame.since) > BigInt(head)
    const bound = replyFrame(Code.BOUND, 'bind', 'bound', { uid, ref: frame.ref })
    bound.mid = head
    if (reset) bound.reset = true
    // Only when asked for: a seed client's 201 stays byte for byte what it always was.
    if (features !== undefined) {
      bound.features = features
      // A client that speaks the extensions can also size its composer before a 413 teaches it.
      bound.maxMessageLength = this.options.maxMessageLength
    }
    this.options.replies.sendFrame(session, slot, bound)
    session.signalsOn = true

    const replayed = await this.replay(session, uid, reset ? undefined : frame.since, carbons)
    if (replayed !== null) this.options.logger.info({ session: session.id, uid, replayed }, 'bound')
  }

  /**
   * The backlog (what `since` names, or what was never pushed), then the live messages held
   * meanwhile (Session.hold) that it did not carry, so mids go out in ascending order and
   * none twice. A bind's answer, and a catch-up after the cluster lost pushes (hub.ts).
   * Returns how many were replayed, or null when the replay was cut off.
   */
  async replay(session: Session, uid: string, since: string | undefined, carbons: boolean): Promise<number | null> {
    const { sent, complete } = await this.options.backlog.send(session, uid, since, carbons)
    const held = session.takeHeld()
    if (!complete) {
      // Held, they reached no one: they wait for the next bind, announced as offline ones are.
      this.options.pipeline.heldAndCutOff(session, uid, held.filter((live) => live.message.to === uid && !sent.has(live.message.mid)))
      return null
    }
    for (const { message: live, data } of held) {
      if (sent.has(live.mid)) continue
      // A carbon of what this user sent from another connection: a copy, not a delivery to them.
      if (live.to !== uid) {
        if (session.send(data)) this.options.metrics?.frameOut('send', Code.MESSAGE)
        continue
      }
      // Held, it was flagged as not pushed (MessagePipeline.push): now it is, so no later bind repeats it.
      if (!session.send(data)) continue
      this.options.metrics?.frameOut('send', Code.MESSAGE)
      this.options.pipeline.setDelivered(uid, live.mid, true)
      this.options.receipts.delivered(live.from, uid, live.mid)
      if (live.read) this.options.receipts.read(live.from, uid, live.mid)
    }
    return sent.size
  }
}
