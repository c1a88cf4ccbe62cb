// The slowest 1 % of a window's messages and what overlapped them (PROBE=1). The load generator
// keeps every acked message of the window as (send time, latency) and its own GC pauses; the
// server's probe keeps its GC pauses (probe.ts). Times are epoch milliseconds
// (performance.timeOrigin + now), so the two processes' intervals compare on one clock.
// A slow message whose flight overlaps no pause of either process was held by something else:
// the machine (another process on the server's core, the VM not running a CPU), or the
// server's own work.
import { PerformanceObserver } from 'node:perf_hooks'

/** A span of time: start (epoch ms) and length (ms). */
export interface Span {
  at: number
  ms: number
}

/** What the load generator reports of its window's tail. */
export interface TailSample {
  /** the messages at or above the window's 99th percentile: send time and latency */
  slow: Span[]
  /** the load generator's own GC pauses in the window */
  loadGc: Span[]
}

export interface TailAttribution {
  messages: number
  /** slow messages whose flights overlap, merged: one stall holds several */
  bursts: number
  /** the burst with the most messages: how many, and its length from the first send to the last ack */
  largestBurst: { messages: number; ms: number }
  /** shares (0–1) of the slow messages whose flight overlaps a pause of the server's GC, the load generator's, or neither */
  serverGc: number
  loadGc: number
  neither: number
}

const epoch = (t: number): number => performance.timeOrigin + t

/** Records, in the load generator, the window's latencies and GC pauses. */
export class TailRecorder {
  private readonly sent: number[] = []
  private readonly latency: number[] = []
  private readonly gc: Span[] = []
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.gc.push({ at: epoch(entry.startTime), ms: entry.duration })
  })
  private from = Infinity

  constructor() {
    this.observer.observe({ entryTypes: ['gc'] })
  }

  /** The window starts: what came before it does not count. */
  start(): void {
    this.sent.length = 0
    this.latency.length = 0
    this.gc.length = 0
    this.from = epoch(performance.now())
  }

  record(sentAt: number, latencyMs: number): void {
    this.sent.push(epoch(sentAt))
    this.latency.push(latencyMs)
  }

  sample(): TailSample {
    this.observer.disconnect()
    const sorted = Float64Array.from(this.latency).sort()
    const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? Infinity
    const slow: Span[] = []
    for (let i = 0; i < this.latency.length; i++) if (this.latency[i]! >= p99) slow.push({ at: this.sent[i]!, ms: this.latency[i]! })
    return { slow, loadGc: this.gc.filter((p) => p.at + p.ms >= this.from) }
  }
}

const overlaps = (a: Span, pauses: Span[]): boolean => pauses.some((p) => p.at < a.at + a.ms && p.at + p.ms > a.at)

export function attributeTail(sample: TailSample, serverGc: Span[]): TailAttribution {
  const slow = [...sample.slow].sort((a, b) => a.at - b.at)
  let inServer = 0
  let inLoad = 0
  let inNeither = 0
  const bursts: Array<{ from: number; to: number; messages: number }> = []
  for (const m of slow) {
    const server = overlaps(m, serverGc)
    const load = overlaps(m, sample.loadGc)
    if (server) inServer++
    if (load) inLoad++
    if (!server && !load) inNeither++
    const last = bursts[bursts.length - 1]
    if (last !== undefined && m.at <= last.to) {
      last.to = Math.max(last.to, m.at + m.ms)
      last.messages++
    } else bursts.push({ from: m.at, to: m.at + m.ms, messages: 1 })
  }
  const largest = bursts.reduce((a, b) => (b.messages > a.messages ? b : a), { from: 0, to: 0, messages: 0 })
  const share = (n: number): number => (slow.length === 0 ? 0 : n / slow.length)
  return {
    messages: slow.length,
    bursts: bursts.length,
    largestBurst: { messages: largest.messages, ms: largest.to - largest.from },
    serverGc: share(inServer),
    loadGc: share(inLoad),
    neither: share(inNeither),
  }
}

export function tailLine(a: TailAttribution): string {
  const pct = (v: number): string => `${Math.round(v * 100)} %`
  return (
    `slowest 1 %: ${a.messages} messages in ${a.bursts} bursts (largest ${a.largestBurst.messages} in ${a.largestBurst.ms.toFixed(1)} ms); ` +
    `in flight during a server GC pause ${pct(a.serverGc)}, a load-generator GC pause ${pct(a.loadGc)}, neither ${pct(a.neither)}`
  )
}

