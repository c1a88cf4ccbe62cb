// The SQLite store's part of the probe (probe.ts): every write batch of the window, from the
// store's diagnostics channel, and where each write's time went: waiting for the batch before
// it (queue), its batch's apply and commit on the event loop (commit), and the WAL fdatasync
// after it (sync). A write's time before the store (its frame waiting for the event loop) and
// after (the ack's write) is the rest of the latency the load generator sees.
import { subscribe } from 'node:diagnostics_channel'
import { SQLITE_BATCH_CHANNEL, type SqliteBatchTiming } from '../src/store/sqlite-batch-channel.js'

export interface StageFigures {
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
}

export interface StoreSummary {
  batches: number
  writes: number
  queue: StageFigures
  commit: StageFigures
  sync: StageFigures
  total: StageFigures
  batchSize: StageFigures
  /** The slowest 1 % of writes by store time: the mean of each stage. */
  slowest: { queueMs: number; commitMs: number; syncMs: number; batchSize: number }
}

interface WriteTiming {
  queue: number
  commit: number
  sync: number
  total: number
  batchSize: number
}

export class StoreProbe {
  private writes: WriteTiming[] = []
  private batches = 0
  private open = false

  constructor() {
    subscribe(SQLITE_BATCH_CHANNEL, (message) => {
      if (!this.open) return
      const { queuedMs, commitMs, syncMs } = message as SqliteBatchTiming
      this.batches++
      for (const queue of queuedMs) {
        this.writes.push({ queue, commit: commitMs, sync: syncMs, total: queue + commitMs + syncMs, batchSize: queuedMs.length })
      }
    })
  }

  start(): void {
    this.writes = []
    this.batches = 0
    this.open = true
  }

  /** The window's figures, or undefined when the server has no SQLite store. */
  stop(): StoreSummary | undefined {
    this.open = false
    const writes = this.writes
    if (writes.length === 0) return undefined
    const byTotal = [...writes].sort((a, b) => a.total - b.total)
    const slowest = byTotal.slice(Math.floor(writes.length * 0.99))
    const mean = (key: keyof WriteTiming): number => round(slowest.reduce((sum, w) => sum + w[key], 0) / slowest.length)
    return {
      batches: this.batches,
      writes: writes.length,
      queue: figures(writes, 'queue'),
      commit: figures(writes, 'commit'),
      sync: figures(writes, 'sync'),
      total: figures(writes, 'total'),
      batchSize: figures(writes, 'batchSize'),
      slowest: { queueMs: mean('queue'), commitMs: mean('commit'), syncMs: mean('sync'), batchSize: mean('batchSize') },
    }
  }
}

const round = (ms: number): number => +ms.toFixed(2)

function figures(writes: readonly WriteTiming[], key: keyof WriteTiming): StageFigures {
  const sorted = writes.map((w) => w[key]).sort((a, b) => a - b)
  const at = (p: number): number => round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!)
  return { p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: round(sorted[sorted.length - 1]!) }
}
