// Log lines about refused connections, at most one per interval: a flood of refusals must not
// become a flood of log lines. The first refusal is reported at once; later ones are summed
// and reported at the end of each interval that had any.

/** The addresses named in one report: the busiest, so a flood points at its source. */
const TOP_ADDRESSES = 5
/** Addresses tracked per interval, so a flood from many addresses cannot grow the map. */
const MAX_TRACKED = 1000

export type TallyReport = (count: number, addresses: Record<string, number>) => void

export class RefusalTally {
  private count = 0
  private readonly byAddress = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly report: TallyReport,
    private readonly intervalMs = 10_000,
  ) {}

  note(ip: string): void {
    if (this.timer === undefined) {
      this.report(1, { [ip]: 1 })
      this.startInterval()
      return
    }
    this.count++
    const seen = this.byAddress.get(ip)
    if (seen !== undefined || this.byAddress.size < MAX_TRACKED) this.byAddress.set(ip, (seen ?? 0) + 1)
  }

  close(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private startInterval(): void {
    this.timer = setTimeout(() => this.flush(), this.intervalMs)
    this.timer.unref()
  }

  private flush(): void {
    this.timer = undefined
    if (this.count === 0) return
    const top = [...this.byAddress].sort((a, b) => b[1] - a[1]).slice(0, TOP_ADDRESSES)
    const count = this.count
    this.count = 0
    this.byAddress.clear()
    this.report(count, Object.fromEntries(top))
    // A flood that goes on keeps getting one line per interval.
    this.startInterval()
  }
}
