// Cross-node pushes that failed (the broker was away, or stalled past its command timeout):
// the message is stored and flagged not pushed, and once the broker answers again the
// recipient's node is asked to push that uid's connections what they were not pushed (a
// catch-up, hub.ts). Without it, a recipient who stays connected through the outage would get
// those messages only at a later bind: its node's subscription may never have dropped, so
// nothing else tells it.
import type { Broker } from '../cluster/broker.js'

/** How often the requests are tried again while the broker is away. */
const RETRY_MS = 1000
/** (node, uid) requests kept at most; past it a recipient gets its messages at its next bind. */
const MAX_PENDING = 10_000

export class LostPushes {
  private readonly byNode = new Map<string, Set<string>>()
  private pending = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor(private readonly broker: Broker) {}

  /** A push to `uid` on `node` was lost. */
  note(node: string, uid: string): void {
    let uids = this.byNode.get(node)
    if (this.closed || uids?.has(uid) === true || this.pending >= MAX_PENDING) return
    if (uids === undefined) this.byNode.set(node, (uids = new Set()))
    uids.add(uid)
    this.pending++
    this.schedule()
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule(): void {
    if (this.timer !== undefined || this.closed) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.retry()
    }, RETRY_MS)
    this.timer.unref()
  }

  private async retry(): Promise<void> {
    for (const [node, uids] of this.byNode) {
      for (const uid of uids) {
        try {
          // Heard or not: a node with no subscriber now resyncs all its connections when it has one again.
          await this.broker.publish(node, { kind: 'catchup', uid })
        } catch {
          this.schedule() // still away
          return
        }
        uids.delete(uid)
        this.pending--
      }
      this.byNode.delete(node)
    }
  }
}
