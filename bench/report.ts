// The summaries of the bench drivers (run.ts, cluster.ts): each target's runs, each figure
// aggregated over the rounds (median, min–max) and printed in markdown tables, the same way in
// every report.

/** What every driver records of a run, first among its figures. */
export interface RunOutcome<Scenario extends string> {
  round: number
  target: string
  scenario: Scenario
  ok: boolean
  error?: string
}

/** One target's runs in one scenario: the successful ones, which the figures are over, and the failed. */
export function runsOf<R extends RunOutcome<string>>(records: R[], scenario: string, target: string): { ok: R[]; failed: R[] } {
  const mine = records.filter((r) => r.scenario === scenario && r.target === target)
  return { ok: mine.filter((r) => r.ok), failed: mine.filter((r) => !r.ok) }
}

export interface Agg {
  median: number
  min: number
  max: number
  n: number
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** over the finite values (a failed reading is undefined); undefined when there are none */
export function agg(xs: Array<number | undefined>): Agg | undefined {
  const v = xs.filter((x): x is number => x !== undefined && Number.isFinite(x))
  if (v.length === 0) return undefined
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length }
}

function fmtNum(x: number, digits: number): string {
  return digits === 0 ? String(Math.round(x)) : x.toFixed(digits)
}

/** the median, then the min–max range when the rounds differ */
export function fmt(a: Agg | undefined, digits: number, suffix = ''): string {
  if (a === undefined) return '–'
  const m = fmtNum(a.median, digits) + suffix
  if (a.n === 1 || a.min === a.max) return m
  return `${m} (${fmtNum(a.min, digits)}–${fmtNum(a.max, digits)})`
}

/** the median alone, for tables too wide for ranges */
export function fmtMedian(a: Agg | undefined, digits: number): string {
  return a === undefined ? '–' : fmtNum(a.median, digits)
}

/** The first `leftColumns` columns (names) are aligned left, the figures right. */
export function table(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const left = (i: number): boolean => i < leftColumns
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (left(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const sep = `|${widths.map((w, i) => (left(i) ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(header), sep, ...rows.map(line)].join('\n')
}
