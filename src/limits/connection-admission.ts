// Counts open connections, in total and per client address, so the transport can refuse
// an upgrade before it happens. The caller releases exactly once per admitted connection.

export type AdmissionVerdict = 'ok' | 'total' | 'per-ip'

export class ConnectionAdmission {
  private total = 0
  private readonly byIp = new Map<string, number>()

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  admit(ip: string): AdmissionVerdict {
    if (this.total >= this.maxTotal) return 'total'
    const fromIp = this.byIp.get(ip) ?? 0
    if (fromIp >= this.maxPerIp) return 'per-ip'
    this.total++
    this.byIp.set(ip, fromIp + 1)
    return 'ok'
  }

  release(ip: string): void {
    const fromIp = this.byIp.get(ip)
    if (fromIp === undefined) return
    this.total--
    if (fromIp <= 1) this.byIp.delete(ip)
    else this.byIp.set(ip, fromIp - 1)
  }

  get open(): number {
    return this.total
  }
}
