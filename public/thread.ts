// One open conversation as the page holds it: history pages, live messages and our own
// unacked sends merged into one list, ordered by mid, each message once. A send not (yet)
// stored has no mid: it keeps the place where it was written, right after the newest message
// held then, so a failed one does not sink below everything that comes later.
import { midAfter } from '../src/client/index.js'

export interface ThreadMessage {
  /** Stable DOM key: the mid, or a local id while the send is not acked. */
  key: string
  mid: string | null
  from: string
  text: string
  ts: number
  status: 'sent' | 'pending' | 'failed'
  /** A failed send: why, in words. */
  reason?: string
  /** A failed send: whether sending it again can work (an over-long text cannot). */
  retry?: boolean
}

interface LocalMessage extends ThreadMessage {
  /** The newest mid held when it was written ("0": none); it sorts right after that one. */
  after: string
  seq: number
}

export class Thread {
  private readonly items = new Map<string, ThreadMessage | LocalMessage>()
  /** The `before` for the next older page: undefined = none loaded yet, null = no more. */
  nextBefore: string | null | undefined = undefined
  loading = false
  private localIds = 0
  private newest = '0'

  constructor(readonly peer: string) {}

  /** Adds a stored message (history or live); a mid already held is ignored. */
  addStored(message: { mid: string; from: string; text: string; ts: number }): void {
    if (this.items.has(message.mid)) return
    this.items.set(message.mid, { ...message, key: message.mid, status: 'sent' })
    if (midAfter(message.mid, this.newest)) this.newest = message.mid
  }

  /** Adds our own message before the server acked it; returns its local key. */
  addPending(from: string, text: string): string {
    const seq = ++this.localIds
    const key = `local-${seq}`
    this.items.set(key, { key, mid: null, from, text, ts: Date.now(), status: 'pending', after: this.newest, seq })
    return key
  }

  get(key: string): ThreadMessage | undefined {
    return this.items.get(key)
  }

  acked(key: string, mid: string, ts: number): void {
    const item = this.items.get(key)
    if (item === undefined) return
    this.items.delete(key)
    this.addStored({ mid, from: item.from, text: item.text, ts })
  }

  failed(key: string, reason: string, retry: boolean): void {
    const item = this.items.get(key)
    if (item !== undefined) Object.assign(item, { status: 'failed', reason, retry })
  }

  /** A failed send goes again: pending, in the same place. */
  retrying(key: string): void {
    const item = this.items.get(key)
    if (item !== undefined) Object.assign(item, { status: 'pending', reason: undefined, retry: undefined })
  }

  remove(key: string): void {
    if (this.items.get(key)?.mid === null) this.items.delete(key)
  }

  /** Oldest first: stored ones by mid, each unstored one right after the message it followed. */
  list(): ThreadMessage[] {
    const position = (m: ThreadMessage | LocalMessage): [string, number] => ('after' in m ? [m.after, m.seq] : [m.mid!, 0])
    return [...this.items.values()].sort((a, b) => {
      const [midA, seqA] = position(a)
      const [midB, seqB] = position(b)
      if (midA !== midB) return midAfter(midA, midB) ? 1 : -1
      return seqA - seqB
    })
  }
}
