// A server process's resident memory, read from /proc, for the tests that bound it.
import { readFileSync } from 'node:fs'

interface Teardown {
  teardown(fn: () => unknown): void
}

export const rssMB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

/** Samples the process's RSS every 25 ms until stopped; `stop` returns the peak. */
export function sampleRss(t: Teardown, pid: number): { stop: () => number } {
  let peak = rssMB(pid)
  const timer = setInterval(() => (peak = Math.max(peak, rssMB(pid))), 25)
  t.teardown(() => clearInterval(timer))
  return {
    stop: () => {
      clearInterval(timer)
      return Math.max(peak, rssMB(pid))
    },
  }
}
