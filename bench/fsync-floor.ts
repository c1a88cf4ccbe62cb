// The disk's floor under a durable ack: how long `write(8 KB) + fdatasync` takes on the
// filesystem the SQLite target writes to (the OS temporary directory), measured by the driver
// in the same run as the servers. A store that acknowledges only after an fdatasync cannot
// answer faster than this at its 99th percentile; the bench prints it beside the tables.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'

export interface FsyncFloor {
  samples: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

/** `samples` appends of 8 KB to one file, each followed by fdatasync, timed one by one. */
export function measureFsyncFloor(samples = 1000): FsyncFloor {
  const dir = mkdtempSync(join(tmpdir(), 'duet-bench-fsync-'))
  const fd = openSync(join(dir, 'floor'), 'w')
  const page = Buffer.alloc(8192, 7)
  const times: number[] = []
  try {
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now()
      writeSync(fd, page)
      fdatasyncSync(fd)
      times.push(performance.now() - t0)
    }
  } finally {
    closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  }
  times.sort((a, b) => a - b)
  const at = (q: number): number => +times[Math.min(times.length - 1, Math.floor(times.length * q))]!.toFixed(3)
  return { samples, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: +times[times.length - 1]!.toFixed(3) }
}
