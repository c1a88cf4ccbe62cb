// Shared between the driver (run.ts) and the load generator (load.ts).
// The driver starts load.ts as a child process with one LoadConfig as JSON in argv[2];
// load.ts writes one JSON object per line on stdout (LoadEvent), and for every event
// with `sync: true` waits for one line on stdin before going on (the driver reads the
// server's RSS meanwhile). measure-start/-end are not synced: the driver reads the server's
// CPU time when it sees them (a pipe hop, well under 1 ms, against a window of seconds).

import type { TailSample } from './tail.js'

export type Protocol = 'ws' | 'sio'
export type Scenario = 'closed' | 'open' | 'idle'

export interface LoadConfig {
  protocol: Protocol
  scenario: Scenario
  /** ws: full URL of the endpoint (ws://127.0.0.1:PORT/ws); sio: http://127.0.0.1:PORT */
  url: string
  /** closed/open: number of pairs (2 connections each) */
  pairs: number
  /** closed: un-acked messages per client */
  window: number
  /** open: offered messages per second, all clients together */
  openRate: number
  /** open: at most this many un-acked messages in total; beyond it sends are skipped and counted */
  maxInflight: number
  warmupSec: number
  durationSec: number
  /** idle: number of bound idle connections */
  idleConns: number
  /** connects in flight at once while setting up */
  connectConcurrency: number
  /** chat message size in bytes */
  msgBytes: number
  /** local source addresses are 127.0.0.1 .. 127.0.0.<sourceAddrs> */
  sourceAddrs: number
  /** offer permessage-deflate from the client (off by default) */
  deflate: boolean
  /** duet targets: the features each bind asks for (e.g. receipts); absent = none, as seed clients */
  features?: string[]
  /** share of the pairs (0–1) whose b side never connects: a's messages go to an offline recipient */
  offline?: number
  /** uid prefix, so that several runs against one server never collide */
  runId: string
  /** record the window's slowest 1 % of messages and the load generator's GC pauses (PROBE=1; tail.ts) */
  trace?: boolean
  /** closed: when set, run (no warm-up) until this many bytes of `msg` were acked, durationSec at most */
  volumeBytes?: number
}

export interface LatencySummary {
  count: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
  meanMs: number
}

export interface TrafficResult {
  scenario: 'closed' | 'open'
  /** measured window, seconds (wall) */
  wallSec: number
  /** acks (204) received in the window */
  acked: number
  /** pushes (200) received in the window */
  delivered: number
  /** error frames received in the window (any code) */
  errors: number
  /** error codes seen (whole run), code -> count */
  errorCodes: Record<string, number>
  ackedPerSec: number
  /** send -> ack, from the moment the frame was handed to the socket */
  latency: LatencySummary
  /** open loop only: from the scheduled send time (corrects coordinated omission) */
  scheduledLatency?: LatencySummary
  /** open loop only: offered rate and sends skipped because maxInflight was reached */
  offeredRate?: number
  skipped?: number
  /** un-acked messages left when the drain timed out */
  unacked: number
  /** load generator CPU seconds in the window / wall seconds (1.0 = one full core) */
  loadCpu: number
  connectSec: number
  /** with `trace`: the window's slowest 1 % and the load generator's GC pauses */
  tail?: TailSample
}

export interface IdleResult {
  scenario: 'idle'
  conns: number
  /** connections opened (and bound) before the first RSS reading */
  warmConns: number
  /** binds/s over the main phase (connect + bind of conns - warmConns) */
  bindsPerSec: number
  bindSec: number
  failed: number
  loadCpu: number
}

export type LoadResult = TrafficResult | IdleResult

export type LoadEvent =
  | { event: 'bound'; conns: number; sec: number }
  | { event: 'measure-start' }
  | { event: 'measure-end' }
  /** closed with volumeBytes: every second */
  | { event: 'progress'; acked: number; bytes: number; sec: number }
  | { event: 'idle-warm'; sync: true; conns: number }
  | { event: 'idle-bound'; conns: number }
  | { event: 'idle-ready'; sync: true; conns: number }
  | { event: 'result'; result: LoadResult }
  | { event: 'error'; message: string }
