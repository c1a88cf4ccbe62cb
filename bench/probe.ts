// Loaded into a benchmarked server with `--import` (run.ts, PROBE=1): records what stalls its
// event loop during the measured window, to attribute the latency tail. The driver sends
// SIGUSR2 at the window's start (reset) and at its end (the summary is written as JSON to
// DUET_PROBE_FILE). Garbage collection: every pause, by kind (perf_hooks 'gc' entries).
// Event-loop delay: monitorEventLoopDelay at 1 ms resolution. What the scavenges promote: the
// old space's growth from one GC report to the next, over the reports that hold only
// scavenges (a scavenge costs about what it copies). An estimate: the growth also counts what
// is allocated old directly, and the sweeping after a mark-compact takes from it. All in the
// server's own process, for duet and the baselines alike. With an SQLite store, the stages of
// its writes too (probe-store.ts).
import { writeFileSync } from 'node:fs'
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
import { StoreProbe } from './probe-store.js'

const file = process.env.DUET_PROBE_FILE
const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}

const oldSpaceUsed = (): number => getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')?.space_used_size ?? 0

if (file !== undefined) {
  let pauses: Array<{ kind: string; at: number; ms: number }> = []
  let oldBefore = oldSpaceUsed()
  let promoted = { bytes: 0, scavenges: 0 }
  let started = performance.now()
  const delay = monitorEventLoopDelay({ resolution: 1 })
  const store = new StoreProbe()
  new PerformanceObserver((list) => {
    const entries = list.getEntries()
    let scavengesOnly = true
    for (const entry of entries) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1
      pauses.push({ kind: KINDS[kind] ?? String(kind), at: performance.timeOrigin + entry.startTime, ms: entry.duration })
      if (kind !== constants.NODE_PERFORMANCE_GC_MINOR) scavengesOnly = false
    }
    // A mark-compact frees old space: its report says nothing of what was promoted.
    const oldNow = oldSpaceUsed()
    if (scavengesOnly) {
      promoted.bytes += oldNow - oldBefore
      promoted.scavenges += entries.length
    }
    oldBefore = oldNow
  }).observe({ entryTypes: ['gc'] })

  let open = false
  process.on('SIGUSR2', () => {
    if (!open) {
      open = true
      pauses = []
      promoted = { bytes: 0, scavenges: 0 }
      oldBefore = oldSpaceUsed()
      started = performance.now()
      delay.reset()
      delay.enable()
      store.start()
      return
    }
    open = false
    delay.disable()
    const windowMs = performance.now() - started
    const byKind: Record<string, { count: number; totalMs: number; maxMs: number }> = {}
    for (const { kind, ms } of pauses) {
      const k = (byKind[kind] ??= { count: 0, totalMs: 0, maxMs: 0 })
      k.count++
      k.totalMs += ms
      k.maxMs = Math.max(k.maxMs, ms)
    }
    const sorted = pauses.map((p) => p.ms).sort((a, b) => a - b)
    const ns = (v: number): number => +(v / 1e6).toFixed(3)
    writeFileSync(
      file,
      JSON.stringify({
        windowMs,
        gc: {
          count: pauses.length,
          totalMs: +sorted.reduce((a, b) => a + b, 0).toFixed(2),
          p99Ms: +(sorted[Math.floor(sorted.length * 0.99)] ?? 0).toFixed(3),
          maxMs: +(sorted[sorted.length - 1] ?? 0).toFixed(3),
          byKind,
          promotedKBPerScavenge: promoted.scavenges === 0 ? 0 : Math.round(promoted.bytes / promoted.scavenges / 1024),
          // each pause on the epoch clock, to be set beside the load generator's slowest messages (tail.ts)
          pauses: pauses.map(({ at, ms }) => ({ at, ms })),
        },
        loopDelay: { p50Ms: ns(delay.percentile(50)), p99Ms: ns(delay.percentile(99)), maxMs: ns(delay.max), meanMs: ns(delay.mean) },
        store: store.stop(),
      }),
    )
  })
}
