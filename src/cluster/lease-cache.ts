// Node lease expiries as last read from Redis, so a presence read costs one round trip
// (the uid's hash) instead of two. Expiries are on Redis's clock; we track its offset
// from ours. A node the cache does not know, or one whose cached lease ran out, sends the
// reader back to Redis (at most every `minRefreshMs` for the latter: a dead node's
// sessions linger until the next heartbeat collects them, and we must not re-read the
// leases on every send meanwhile).

export class LeaseCache {
  private expiries = new Map<string, number>()
  /** Redis clock minus local clock, ms. */
  private offset = 0
  private refreshedAt = Number.NEGATIVE_INFINITY

  constructor(private readonly minRefreshMs: number) {}

  /** Now on Redis's clock, estimated. */
  now(): number {
    return Date.now() + this.offset
  }

  /**
   * Loads a reply of the form (now, [node, expiry, node, expiry, ...]), read by a request
   * sent at local time `sentAt`.
   */
  load(redisNow: number, flat: string[], sentAt: number): void {
    const receivedAt = Date.now()
    this.offset = redisNow - (sentAt + receivedAt) / 2
    this.refreshedAt = receivedAt
    const expiries = new Map<string, number>()
    for (let i = 0; i + 1 < flat.length; i += 2) expiries.set(flat[i]!, Number(flat[i + 1]))
    this.expiries = expiries
  }

  /** True when the cache cannot vouch for every one of `nodes` (alive or dead). */
  needsRefresh(nodes: Iterable<string>): boolean {
    const now = this.now()
    for (const node of nodes) {
      const expiry = this.expiries.get(node)
      if (expiry === undefined) return true
      if (expiry <= now && Date.now() - this.refreshedAt >= this.minRefreshMs) return true
    }
    return false
  }

  isLive(node: string): boolean {
    return (this.expiries.get(node) ?? 0) > this.now()
  }

  liveNodes(): string[] {
    return [...this.expiries.keys()].filter((node) => this.isLive(node))
  }
}
