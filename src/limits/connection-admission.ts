// Counts connections, in total and per client address, so the transport can refuse an
// upgrade before it happens. Per address it counts open WebSockets and, when the transport
// reports them, TCP connections that have not sent their request yet: half-sent upgrades hold
// a file descriptor each, and one address could otherwise hold them until the server runs out.
// The caller releases exactly once per admitted connection and settles each pending one once.

export type AdmissionVerdict = 'ok' | 'total' | 'per-ip'

export class ConnectionAdmission {
  private total = 0
  private readonly byIp = new Map<string, number>()
  private readonly pendingByIp = new Map<string, number>()

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  /** An upgrade whose request is in: counted against the limits with the address's pending connections. */
  admit(ip: string): AdmissionVerdict {
    if (this.total >= this.maxTotal) return 'total'
    const fromIp = this.byIp.get(ip) ?? 0
    if (fromIp + (this.pendingByIp.get(ip) ?? 0) >= this.maxPerIp) return 'per-ip'
    this.total++
    this.byIp.set(ip, fromIp + 1)
    return 'ok'
  }

  release(ip: string): void {
    const fromIp = this.byIp.get(ip)
    if (fromIp === undefined) return
    this.total--
    decrement(this.byIp, ip, fromIp)
  }

  /**
   * A TCP connection from `ip` that has not sent its request yet; false: refuse it. One past
   * the limit is let in, so a client at its limit still hears the 429 of its upgrade (and gets
   * the answer of a plain HTTP request) instead of a reset.
   */
  openPending(ip: string): boolean {
    const pending = this.pendingByIp.get(ip) ?? 0
    if (pending + (this.byIp.get(ip) ?? 0) > this.maxPerIp) return false
    this.pendingByIp.set(ip, pending + 1)
    return true
  }

  /** The pending connection sent its request, or closed. */
  settlePending(ip: string): void {
    const pending = this.pendingByIp.get(ip)
    if (pending !== undefined) decrement(this.pendingByIp, ip, pending)
  }

  get open(): number {
    return this.total
  }

  /** Connections from `ip` that have not sent their request yet. */
  pendingFrom(ip: string): number {
    return this.pendingByIp.get(ip) ?? 0
  }
}

function decrement(counts: Map<string, number>, ip: string, count: number): void {
  if (count <= 1) counts.delete(ip)
  else counts.set(ip, count - 1)
}
