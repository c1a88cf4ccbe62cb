// The hub: live connections by uid, their open conversations, and the four client
// events. It knows the MessageStore contract only, never a concrete store.
import type { Logger } from '../logger.js'
import { Close, Code } from '../protocol/codes.js'
import { encodeFrame, messageFrame, replyFrame } from '../protocol/frames.js'
import { charLength, parseFrame } from '../protocol/parse.js'
import type { BindFrame, ClientFrame, ExitFrame, JoinFrame, SendFrame } from '../protocol/schemas.js'
import type { MessageStore, StoredMessage } from '../store/message-store.js'
import { Session, type Connection, type SessionInfo } from './session.js'

export interface HubOptions {
  store: MessageStore
  logger: Logger
  nodeId: string
  multiDevice: boolean
  maxMessageLength: number
}

/** How many stored messages one replay query reads at a time. */
const REPLAY_PAGE = 500

export class Hub {
  private readonly users = new Map<string, Session[]>()
  private readonly sessions = new Map<string, Session>()
  private readonly inFlight = new Set<Promise<unknown>>()
  private closing = false

  constructor(private readonly options: HubOptions) {}

  open(connection: Connection, remoteAddress: string): Session {
    const session = new Session(connection, remoteAddress)
    this.sessions.set(session.id, session)
    return session
  }

  /** The connection went away: forget it. Its stored messages stay for recovery. */
  close(session: Session): void {
    session.closed = true
    this.sessions.delete(session.id)
    if (session.uid !== null) this.unregister(session)
  }

  handle(session: Session, data: string): void {
    if (session.queued !== null) {
      session.queued.push(data)
      return
    }
    const parsed = parseFrame(data)
    if (!parsed.ok) {
      const { code, type, ref, msg } = parsed.error
      this.reply(session, code, type, msg, { ref })
      return
    }
    const frame = parsed.frame
    if (this.closing) {
      this.reply(session, Code.SHUTTING_DOWN, frame.type, 'server is shutting down: reconnect elsewhere', { ref: frame.ref })
      return
    }
    if (frame.type === 'bind') {
      this.track(this.bind(session, frame))
      return
    }
    if (session.uid === null) {
      this.reply(session, Code.NOT_BOUND, frame.type, 'not bound: send bind first', { ref: frame.ref })
      return
    }
    if (frame.uid !== undefined && frame.uid !== session.uid) {
      this.reply(session, Code.UID_MISMATCH, frame.type, `uid: differs from the bound uid`, { ref: frame.ref })
      return
    }
    switch (frame.type) {
      case 'send':
        this.track(this.send(session, session.uid, frame))
        return
      case 'join':
        this.track(this.join(session, session.uid, frame))
        return
      case 'exit':
        this.exit(session, frame)
        return
    }
  }

  /** A frame the transport refused before parsing (binary, for one). */
  refuse(session: Session, code: Code, msg: string): void {
    this.reply(session, code, '', msg)
  }

  private async bind(session: Session, frame: BindFrame): Promise<void> {
    if (session.uid !== null) {
      this.reply(session, Code.ALREADY_BOUND, 'bind', `already bound as ${session.uid}`, { ref: frame.ref, uid: session.uid })
      return
    }
    // Later frames wait until the bind is answered: clients send bind and go on at once.
    session.queued = []
    session.held = []
    try {
      session.uid = frame.uid
      this.register(session)
      await this.answerBind(session, frame)
    } catch (err) {
      this.options.logger.error({ err, session: session.id, uid: frame.uid }, 'bind failed')
      this.unregister(session)
      session.uid = null
      session.held = null
      this.reply(session, Code.INTERNAL, 'bind', 'internal error: bind again', { ref: frame.ref })
    }
    const queued = session.queued
    session.queued = null
    for (const data of queued) this.handle(session, data)
  }

  private async answerBind(session: Session, frame: BindFrame): Promise<void> {
    const { store } = this.options
    const uid = frame.uid
    let head = BigInt(await store.headMid(uid))
    const since = frame.since === undefined ? undefined : BigInt(frame.since)
    const reset = since !== undefined && since > head
    const replay: StoredMessage[] = []
    if (since !== undefined && !reset) {
      for (let after = since; ; ) {
        const page = await store.since(uid, after.toString(), REPLAY_PAGE)
        replay.push(...page)
        if (page.length < REPLAY_PAGE) break
        after = BigInt(page[page.length - 1]!.mid)
      }
    } else {
      for (;;) {
        const page = await store.undelivered(uid, REPLAY_PAGE)
        replay.push(...page)
        if (page.length === 0) break
        await store.markDelivered(uid, page[page.length - 1]!.mid)
        if (page.length < REPLAY_PAGE) break
      }
    }
    const last = replay[replay.length - 1]
    if (last !== undefined && BigInt(last.mid) > head) head = BigInt(last.mid)
    if (since !== undefined && !reset && last !== undefined) await store.markDelivered(uid, last.mid)

    const bound = replyFrame(Code.BOUND, 'bind', 'bound', { uid, ref: frame.ref })
    bound.mid = head.toString()
    if (reset) bound.reset = true
    session.send(encodeFrame(bound))
    const sent = new Set<string>()
    for (const message of replay) {
      sent.add(message.mid)
      session.send(encodeFrame(messageFrame(message, true)))
    }
    const held = session.held ?? []
    session.held = null
    for (const frameHeld of held) if (!sent.has(frameHeld.mid)) session.send(frameHeld.data)
    this.options.logger.info({ session: session.id, uid, replayed: replay.length }, 'bound')
  }

  private async send(session: Session, from: string, frame: SendFrame): Promise<void> {
    const { store, maxMessageLength } = this.options
    const to = frame.touid
    if (charLength(frame.msg, maxMessageLength) > maxMessageLength) {
      this.reply(session, Code.TOO_LONG, 'send', `msg: longer than ${maxMessageLength} characters`, { ref: frame.ref, touid: to })
      return
    }
    const recipients = this.users.get(to)
    let stored: StoredMessage
    let duplicate: boolean
    try {
      const result = await store.append({
        from,
        to,
        msg: frame.msg,
        ref: frame.ref,
        read: recipients?.some((s) => s.joined === from) ?? false,
        delivered: recipients !== undefined,
      })
      stored = result.message
      duplicate = result.duplicate
    } catch (err) {
      this.options.logger.error({ err, session: session.id, uid: from }, 'store append failed')
      this.reply(session, Code.INTERNAL, 'send', 'internal error: message not stored, send again', { ref: frame.ref, touid: to })
      return
    }
    const ack = replyFrame(Code.SENT, 'send', '', { uid: from, touid: to, ref: frame.ref })
    ack.mid = stored.mid
    ack.ts = stored.ts
    session.send(encodeFrame(ack))
    if (!duplicate) this.deliverToUser(to, stored)
  }

  /** Pushes a stored message to every live connection of its recipient on this node. */
  deliverToUser(uid: string, message: StoredMessage): void {
    const targets = this.users.get(uid)
    if (targets === undefined) return
    const data = encodeFrame(messageFrame(message, false))
    for (const target of targets) {
      if (target.held !== null) target.held.push({ mid: message.mid, data })
      else target.send(data)
    }
  }

  private async join(session: Session, uid: string, frame: JoinFrame): Promise<void> {
    // Open first, so that a message arriving while the store marks the rest is read too.
    session.joined = frame.touid
    try {
      await this.options.store.markRead(uid, frame.touid)
    } catch (err) {
      this.options.logger.error({ err, session: session.id, uid }, 'store markRead failed')
      this.reply(session, Code.INTERNAL, 'join', 'internal error: join again', { ref: frame.ref, touid: frame.touid })
      return
    }
    this.reply(session, Code.JOINED, 'join', 'joined', { uid, touid: frame.touid, ref: frame.ref })
  }

  /** Leaves whatever conversation is open; a `touid` in the frame is ignored. */
  private exit(session: Session, frame: ExitFrame): void {
    const left = session.joined ?? ''
    session.joined = null
    this.reply(session, Code.EXITED, 'exit', 'exited', { uid: session.uid ?? '', touid: left, ref: frame.ref })
  }

  private register(session: Session): void {
    const uid = session.uid!
    const existing = this.users.get(uid)
    if (existing === undefined || this.options.multiDevice) {
      if (existing === undefined) this.users.set(uid, [session])
      else existing.push(session)
      return
    }
    this.users.set(uid, [session])
    for (const old of existing) this.replace(old)
  }

  private replace(old: Session): void {
    const uid = old.uid ?? ''
    old.send(encodeFrame(replyFrame(Code.REPLACED, 'bind', 'replaced: this uid bound on another connection', { uid })))
    old.uid = null
    old.closed = true
    old.connection.close(Close.REPLACED, 'replaced by a newer connection')
    this.options.logger.info({ session: old.id, uid }, 'replaced by a newer bind')
  }

  private unregister(session: Session): void {
    const uid = session.uid!
    const list = this.users.get(uid)
    if (list === undefined) return
    const rest = list.filter((s) => s !== session)
    if (rest.length === 0) this.users.delete(uid)
    else this.users.set(uid, rest)
  }

  private reply(
    session: Session,
    code: Code,
    type: string,
    msg: string,
    fields: { uid?: string; touid?: string; ref?: string | undefined } = {},
  ): void {
    session.send(encodeFrame(replyFrame(code, type, msg, fields)))
  }

  private track(work: Promise<void>): void {
    const guarded = work.catch((err: unknown) => this.options.logger.error({ err }, 'unexpected hub failure'))
    this.inFlight.add(guarded)
    void guarded.finally(() => this.inFlight.delete(guarded))
  }

  onlineUids(): string[] {
    return [...this.users.keys()]
  }

  listSessions(): SessionInfo[] {
    const out: SessionInfo[] = []
    for (const session of this.sessions.values()) {
      if (session.uid === null) continue
      out.push({
        id: session.id,
        uid: session.uid,
        joined: session.joined,
        connectedAt: new Date(session.connectedAt).toISOString(),
        remoteAddress: session.remoteAddress,
        node: this.options.nodeId,
      })
    }
    return out
  }

  /** Disconnects one session (admin). Resolves false when no such session lives here. */
  kick(id: string): boolean {
    const session = this.sessions.get(id)
    if (session === undefined) return false
    session.connection.close(Close.KICKED, 'disconnected by an administrator')
    this.close(session)
    return true
  }

  /** Shutdown: refuse new frames, tell every client, wait for in-flight store work. */
  async shutdown(): Promise<void> {
    this.closing = true
    const goodbye = encodeFrame(replyFrame(Code.SHUTTING_DOWN, '', 'server is shutting down: reconnect elsewhere'))
    await Promise.allSettled([...this.inFlight])
    for (const session of this.sessions.values()) {
      session.send(goodbye)
      session.connection.close(Close.GOING_AWAY, 'server shutting down')
    }
    this.sessions.clear()
    this.users.clear()
  }
}

export type { ClientFrame }
