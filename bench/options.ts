// Options of the bench scripts: KEY=VALUE or --key=value arguments, else the environment.
import type { LoadConfig } from './types.js'

function readArgs(argv: string[]): Map<string, string> {
  const m = new Map<string, string>()
  for (const a of argv) {
    const match = /^(?:--)?([A-Za-z][A-Za-z0-9_-]*)=(.*)$/.exec(a)
    if (match === null) throw new Error(`bad argument ${JSON.stringify(a)}: use KEY=VALUE or --key=value`)
    m.set(match[1]!.toUpperCase().replace(/-/g, '_'), match[2]!)
  }
  return m
}

const ARGS = readArgs(process.argv.slice(2))

export const opt = (name: string): string | undefined => ARGS.get(name) ?? process.env[name]

export function num(name: string, def: number): number {
  const v = opt(name)
  if (v === undefined || v === '') return def
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`)
  return n
}

export function bool(name: string, def: boolean): boolean {
  const v = opt(name)
  if (v === undefined || v === '') return def
  return !['0', 'false', 'no', 'off'].includes(v.toLowerCase())
}

export function list(name: string): string[] | undefined {
  const v = opt(name)
  if (v === undefined || v.trim() === '') return undefined
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '')
}

/** What run.ts and cluster.ts both read, first among their options: the rounds and their traffic. */
export interface RoundOptions {
  rounds: number
  durationSec: number
  warmupSec: number
  pairs: number
  window: number
}

export function readRoundOptions(): RoundOptions {
  return {
    rounds: Math.max(1, Math.floor(num('ROUNDS', 3))),
    durationSec: num('DURATION', 10),
    warmupSec: num('WARMUP', 2),
    pairs: Math.max(1, Math.floor(num('PAIRS', 50))),
    window: Math.max(1, Math.floor(num('WINDOW', 10))),
  }
}

/**
 * One run's traffic, as both load generators take it: the open loop may have 10 s of its rate
 * (1000 at least) in flight, and the uids are the run's own.
 */
export function trafficConfig(
  o: RoundOptions & { openRate: number; msgBytes: number },
  round: number,
  scenario: string,
): Pick<LoadConfig, 'pairs' | 'window' | 'openRate' | 'maxInflight' | 'warmupSec' | 'durationSec' | 'msgBytes' | 'runId'> {
  return {
    pairs: o.pairs,
    window: o.window,
    openRate: o.openRate,
    maxInflight: Math.max(1000, o.openRate * 10),
    warmupSec: o.warmupSec,
    durationSec: o.durationSec,
    msgBytes: o.msgBytes,
    runId: `r${round}${scenario[0]}${Date.now().toString(36)}`,
  }
}
