// Typing notices (code 206): never stored, forwarded at most once per (sender, recipient) pair
// per second from this node, to the recipient's connections that asked for `typing`, here and
// on the other nodes presence places them on. The throttle map is bounded: entries older than
// the throttle go first, and past the bound the oldest, which at worst lets one extra through.
import { performance } from 'node:perf_hooks'
import type { ClusterEvent } from '../cluster/broker.js'
import { Code } from '../protocol/codes.js'
import { encodeFrame, typingFrame } from '../protocol/frames.js'
import type { FanOut } from './fan-out.js'
import { Feature } from './features.js'
import type { HubMetrics } from './hub-metrics.js'

export const TYPING_THROTTLE_MS = 1000
/** Pairs remembered at most; a chat server has far fewer typing at the same second. */
const MAX_PAIRS = 100_000

export interface TypingOptions {
  fanOut: FanOut
  metrics?: HubMetrics | undefined
  /** Monotonic ms; a parameter for the tests. */
  now?: () => number
}

export class Typing {
  /** from NUL to -> when last forwarded; in the order of that time (re-inserted on update). */
  private readonly last = new Map<string, number>()
  private readonly now: () => number

  constructor(private readonly options: TypingOptions) {
    this.now = options.now ?? (() => performance.now())
  }

  /** Forwards `from` typing to `to`; false when throttled (dropped silently). */
  forward(from: string, to: string): boolean {
    const now = this.now()
    const key = `${from}\u0000${to}`
    const previous = this.last.get(key)
    if (previous !== undefined && now - previous < TYPING_THROTTLE_MS) return false
    this.last.delete(key)
    this.last.set(key, now)
    if (this.last.size > MAX_PAIRS) this.prune(now)
    this.toLocal(from, to)
    const event: ClusterEvent = { kind: 'typing', from, to }
    this.options.fanOut.toOtherNodes(to, Feature.typing, event, true)
    return true
  }

  /** Another node forwarded a typing notice for this node's connections of its recipient. */
  fromNode(event: Extract<ClusterEvent, { kind: 'typing' }>): void {
    this.toLocal(event.from, event.to)
  }

  private toLocal(from: string, to: string): void {
    const sent = this.options.fanOut.toLocal(to, Feature.typing, () => encodeFrame(typingFrame(from, to)))
    if (sent > 0) this.options.metrics?.frameOut('typing', Code.TYPING, sent)
  }

  private prune(now: number): void {
    for (const [key, at] of this.last) {
      if (now - at < TYPING_THROTTLE_MS && this.last.size <= MAX_PAIRS) break
      this.last.delete(key)
    }
  }
}
