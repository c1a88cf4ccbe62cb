// The SQLite store's part of the probe (probe.ts): every write batch of the window, from the
// store's diagnostics channel, and where each write's time went: waiting for the batch before
// it (queue), its batch's apply and commit on the event loop (commit), and the WAL fdatasync
// after it (sync). A write's time before the store (its frame waiting for the event loop) and
// after (the ack's write) is the rest of the latency the load generator sees.
import { subscribe } from 'node:diagnostics_channel'
import { SQLITE_BATCH_CHANNEL, type SqliteBatchTiming } from '../src/store/sqlite-batch-channel.js'

/** Percentiles of one figure over the window's writes (milliseconds, or writes for a batch's size). */
export interface Spread {
  p50: number
  p90: number
  p99: number
  max: number
}

export interface StoreSummary {
  batches: number
  writes: number
  queueMs: Spread
  commitMs: Spread
  syncMs: Spread
  totalMs: Spread
  batchSize: Spread
  /** The slowest 1 % of writes by time in the store: the mean of each stage, and of their batches' size. */
  slowest: { queueMs: number; commitMs: number; syncMs: number; batchSize: number }
}

// A write's figures, side by side in one typed array (the probe runs inside the measured server:
// a hundred thousand objects kept for the window would grow its old generation).
const QUEUE = 0
const COMMIT = 1
const SYNC = 2
const SIZE = 3
const FIELDS = 4

export class StoreProbe {
  private figures = new Float64Array(FIELDS * 65_536)
  private writes = 0
  private batches = 0
  private open = false

  constructor() {
    subscribe(SQLITE_BATCH_CHANNEL, (message) => {
      if (this.open) this.record(message as SqliteBatchTiming)
    })
  }

  start(): void {
    this.writes = 0
    this.batches = 0
    this.open = true
  }

  /** The window's figures, or undefined when the server has no SQLite store. */
  stop(): StoreSummary | undefined {
    this.open = false
    if (this.writes === 0) return undefined
    const field = (f: number): number[] => Array.from({ length: this.writes }, (_, i) => this.figures[i * FIELDS + f]!)
    const [queue, commit, sync, size] = [QUEUE, COMMIT, SYNC, SIZE].map(field) as [number[], number[], number[], number[]]
    const total = queue.map((q, i) => q + commit[i]! + sync[i]!)
    const slowest = total
      .map((ms, i) => ({ ms, i }))
      .sort((a, b) => a.ms - b.ms)
      .slice(Math.floor(this.writes * 0.99))
    const mean = (of: number[]): number => round(slowest.reduce((sum, { i }) => sum + of[i]!, 0) / slowest.length)
    return {
      batches: this.batches,
      writes: this.writes,
      queueMs: spread(queue),
      commitMs: spread(commit),
      syncMs: spread(sync),
      totalMs: spread(total),
      batchSize: spread(size),
      slowest: { queueMs: mean(queue), commitMs: mean(commit), syncMs: mean(sync), batchSize: mean(size) },
    }
  }

  private record({ queuedMs, commitMs, syncMs }: SqliteBatchTiming): void {
    this.batches++
    if ((this.writes + queuedMs.length) * FIELDS > this.figures.length) {
      const grown = new Float64Array(Math.max(this.figures.length * 2, (this.writes + queuedMs.length) * FIELDS))
      grown.set(this.figures)
      this.figures = grown
    }
    for (const queue of queuedMs) {
      const at = this.writes++ * FIELDS
      this.figures[at + QUEUE] = queue
      this.figures[at + COMMIT] = commitMs
      this.figures[at + SYNC] = syncMs
      this.figures[at + SIZE] = queuedMs.length
    }
  }
}

const round = (value: number): number => +value.toFixed(2)

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (p: number): number => round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!)
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted[sorted.length - 1]!) }
}
