// One client's opt-in signals: the features the server accepted, the watched peers (watched
// again after every bind), typing both ways, and the receipt marks, so that only a mark that
// moves up becomes an event. The client hands it the signal frames and tells it when it binds.
import { Code } from '../protocol/codes.js'
import type { ServerFrame, TypingFrame, UnwatchFrame, WatchFrame } from '../protocol/schemas.js'
import { acceptedFeatures, parsePresence, parseReceipt, type Feature } from './features.js'
import { midAfter } from './mids.js'
import { TypingTracker } from './typing.js'
import type { DuetClientEvents } from './types.js'

export type SignalFrame = TypingFrame | WatchFrame | UnwatchFrame

export interface SignalsHost {
  readonly uid: string
  /** True while the connection is bound: signals go out only then. */
  bound(): boolean
  transmit(frame: SignalFrame): void
  /** Sends `frame` only if it can go at once (the pace allows it); true when it went. */
  offer(frame: SignalFrame): boolean
  emit<K extends 'receipt' | 'typing' | 'presence'>(event: K, value: DuetClientEvents[K]): void
}

export class Signals {
  private accepted: ReadonlySet<Feature> = new Set()
  readonly watched = new Set<string>()
  /** Per peer, the highest delivered and read mids reported. */
  private readonly marks = new Map<string, { delivered: string; read: string }>()
  readonly typing: TypingTracker

  constructor(
    private readonly host: SignalsHost,
    private readonly requested: readonly Feature[],
    typingIntervalMs: number,
    typingTimeoutMs: number,
  ) {
    this.typing = new TypingTracker(typingIntervalMs, typingTimeoutMs, (peer, typing) => host.emit('typing', { peer, typing }))
  }

  get features(): ReadonlySet<Feature> {
    return this.accepted
  }

  /** A 201: what the server accepted of what was asked; the watch list goes out again. */
  bound(frame: ServerFrame): Feature[] {
    this.accepted = new Set(acceptedFeatures(frame).filter((name) => this.requested.includes(name)))
    return [...this.accepted]
  }

  /** A bind answered `reset`: the marks were of mids the store no longer has. */
  reset(): void {
    this.marks.clear()
  }

  /** After the bind's own frames: watch again what was watched. */
  rewatch(): void {
    if (this.accepted.has('presence')) for (const peer of this.watched) this.host.transmit({ type: 'watch', touid: peer })
  }

  sendTyping(peer: string): boolean {
    if (!this.host.bound() || !this.accepted.has('typing') || !this.typing.mayNotify(peer)) return false
    if (this.host.offer({ type: 'typing', touid: peer })) return true
    // Not sent (the pace): the next keystroke may try again.
    this.typing.notSent(peer)
    return false
  }

  watch(peer: string): void {
    if (this.watched.has(peer)) return
    this.watched.add(peer)
    if (this.host.bound() && this.accepted.has('presence')) this.host.transmit({ type: 'watch', touid: peer })
  }

  unwatch(peer: string): void {
    if (!this.watched.delete(peer)) return
    if (this.host.bound() && this.accepted.has('presence')) this.host.transmit({ type: 'unwatch', touid: peer })
  }

  /** A frame no request waits for: a signal becomes an event; anything else is ignored. */
  notice(frame: ServerFrame): void {
    switch (frame.code) {
      case Code.RECEIPT: {
        const receipt = parseReceipt(frame)
        if (receipt !== undefined && this.advance(receipt.peer, receipt.status, receipt.mid)) this.host.emit('receipt', receipt)
        return
      }
      case Code.TYPING:
        if (typeof frame.uid === 'string' && frame.uid !== '' && frame.uid !== this.host.uid) this.typing.noticed(frame.uid)
        return
      case Code.PRESENCE: {
        const presence = parsePresence(frame)
        // An answer that crossed an unwatch is stale.
        if (presence !== undefined && this.watched.has(presence.peer)) this.host.emit('presence', presence)
        return
      }
    }
  }

  /** Records a receipt's mark; true when it moved (read moves delivered along). */
  private advance(peer: string, status: 'delivered' | 'read', mid: string): boolean {
    let marks = this.marks.get(peer)
    if (marks === undefined) this.marks.set(peer, (marks = { delivered: '0', read: '0' }))
    if (!midAfter(mid, marks[status])) return false
    marks[status] = mid
    if (status === 'read' && midAfter(mid, marks.delivered)) marks.delivered = mid
    return true
  }
}
