// One open conversation as the page holds it: history pages, live messages and our own
// pending sends merged into one list, ordered by mid, each message once.
import { midAfter } from '../src/client/index.js'

export interface ThreadMessage {
  /** Stable DOM key: the mid, or a local id while the send is not acked. */
  key: string
  mid: string | null
  from: string
  text: string
  ts: number
  status: 'sent' | 'pending' | 'failed'
  /** The error code of a failed send. */
  code?: number
}

export class Thread {
  private readonly items = new Map<string, ThreadMessage>()
  /** The `before` for the next older page: undefined = none loaded yet, null = no more. */
  nextBefore: string | null | undefined = undefined
  loading = false
  private localIds = 0

  constructor(readonly peer: string) {}

  /** Adds a stored message (history or live); a mid already held is ignored. */
  addStored(message: { mid: string; from: string; text: string; ts: number }): void {
    if (!this.items.has(message.mid)) this.items.set(message.mid, { ...message, key: message.mid, status: 'sent' })
  }

  /** Adds our own message before the server acked it; returns its local key. */
  addPending(from: string, text: string): string {
    const key = `local-${++this.localIds}`
    this.items.set(key, { key, mid: null, from, text, ts: Date.now(), status: 'pending' })
    return key
  }

  acked(key: string, mid: string, ts: number): void {
    const item = this.items.get(key)
    if (item === undefined) return
    this.items.delete(key)
    this.addStored({ mid, from: item.from, text: item.text, ts })
  }

  failed(key: string, code: number): void {
    const item = this.items.get(key)
    if (item !== undefined) Object.assign(item, { status: 'failed', code })
  }

  /** Oldest first; pending sends last, in the order they were written. */
  list(): ThreadMessage[] {
    const stored = [...this.items.values()].filter((m) => m.mid !== null)
    stored.sort((a, b) => (a.mid === b.mid ? 0 : midAfter(a.mid!, b.mid!) ? 1 : -1))
    return [...stored, ...[...this.items.values()].filter((m) => m.mid === null)]
  }
}
