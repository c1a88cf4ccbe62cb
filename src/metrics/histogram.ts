// A Prometheus histogram for the per-message hot path: observing is a bucket search and three
// additions (prom-client's observe hashes labels and formats the bucket bound on every call,
// about 0.25 µs, twice per chat message). Rendered in the text exposition format at scrape time.

export class LatencyHistogram {
  private readonly counts: Float64Array
  private sum = 0
  private count = 0

  /** `bounds`: upper bounds in seconds, ascending; +Inf is implied. */
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(seconds: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && seconds > bounds[i]!) i++
    this.counts[i]!++
    this.sum += seconds
    this.count++
  }

  /** Sample lines (no HELP/TYPE) under `name`, with `labels` (already formatted, e.g. `result="ok"`) after `le`. */
  lines(name: string, labels = ''): string[] {
    const extra = labels === '' ? '' : `,${labels}`
    const plain = labels === '' ? '' : `{${labels}}`
    const out: string[] = []
    let cumulative = 0
    for (let i = 0; i < this.counts.length; i++) {
      cumulative += this.counts[i]!
      const le = i < this.bounds.length ? String(this.bounds[i]) : '+Inf'
      out.push(`${name}_bucket{le="${le}"${extra}} ${cumulative}`)
    }
    out.push(`${name}_sum${plain} ${this.sum}`, `${name}_count${plain} ${this.count}`)
    return out
  }
}

/** A label value escaped for the text format (backslash, double quote, newline). */
export function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** One histogram metric in the text format: HELP, TYPE, then every labelled series. */
export function renderHistogram(name: string, help: string, series: ReadonlyArray<[labels: string, histogram: LatencyHistogram]>): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`]
  for (const [labels, histogram] of series) lines.push(...histogram.lines(name, labels))
  return lines.join('\n')
}
