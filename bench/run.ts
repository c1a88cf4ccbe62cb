// Benchmark driver: `npm run bench` (builds, then runs dist/bench/run.js).
//
// For each round, for each scenario, for each target (interleaved, so that drift hits every
// target alike): start a fresh server pinned to SERVER_CPU, wait until its port accepts, run the
// load generator (bench/load.ts) pinned to LOAD_CPU, read the server's CPU time
// (/proc/<pid>/stat) at the start and end of the measured window and its RSS (/proc/<pid>/status),
// stop the server. Prints one table per scenario (medians, min–max over rounds) and writes all raw
// figures to bench/results/bench-<time>.json (and latest.json).
//
// Options, as env vars or argv (`ROUNDS=5`, `--rounds=5`, `--idle-conns=1000`; argv wins):
//   ROUNDS (3)  DURATION s (10)  WARMUP s (2)  PAIRS (50)  WINDOW (10)  IDLE_CONNS (10000)
//   OPEN_RATE msg/s (10000)  TARGETS (all; comma list: duet-memory,duet-sqlite,ws,ws-batched,socketio)
//   SCENARIOS (closed,open,idle)  MSG_BYTES (64)  CONNECT_CONCURRENCY (100)  SOURCE_ADDRS (9)
//   DEFLATE (0: clients do not offer permessage-deflate)  TASKSET (1: pin when taskset exists)
//   SERVER_CPU (0)  LOAD_CPU (1)  STARTUP_TIMEOUT s (20)  SERVER_NODE_ARGS (e.g. "--cpu-prof")
//   OFFLINE (0: share of the pairs whose recipient never connects, e.g. 0.5)
//   COMPARE (a path: another checkout, built; adds its duet targets as `<name>@compare`, so a
//   change is measured against the code before it in the same interleaved run)
//   PROBE (0; 1: every server records its GC pauses, what its scavenges promoted and its
//   event-loop delay in the measured window, bench/probe.ts, printed per run and kept in the JSON;
//   and what the window's slowest 1 % of messages were in flight during, bench/tail.ts)
// Targets named only on request: duet-memory+webhook, duet-sqlite+webhook (WEBHOOK_URL set to a
// receiver in this process that answers 204; compare them with OFFLINE=0.5 against the same
// target without webhooks: `--targets=duet-sqlite,duet-sqlite+webhook --offline=0.5`).
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { cpus, freemem, release, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import {
  clkTck,
  hasTaskset,
  indent,
  LoadProcess,
  oneLine,
  openFileLimit,
  pinned,
  pinSelf,
  procCpuSec,
  procMem,
  ROOT,
  sleep,
  startServer,
  stopServer,
  systemBusySec,
  withFileLimit,
  type Pinning,
  type RunningServer,
} from './proc.js'
import type { IdleResult, LoadConfig, LoadEvent, LoadResult, Protocol, Scenario, TrafficResult } from './types.js'
import { bool, list, num, opt, readRoundOptions, trafficConfig, type RoundOptions } from './options.js'
import { agg, fmt, runsOf, table, type Agg, type RunOutcome } from './report.js'
import { BENCH_WEBHOOK_SECRET, WebhookReceiver } from './webhook-receiver.js'
import { measureFsyncFloor, type FsyncFloor } from './fsync-floor.js'
import type { Spread, StoreSummary } from './probe-store.js'
import { attributeTail, tailLine, type Span, type TailAttribution } from './tail.js'

const LOAD_JS = join(ROOT, 'dist/bench/load.js')
const RESULTS_DIR = join(ROOT, 'bench/results')

// ---------------------------------------------------------------------------------------------
// options

interface Options extends RoundOptions {
  idleConns: number
  openRate: number
  msgBytes: number
  connectConcurrency: number
  sourceAddrs: number
  deflate: boolean
  targets: string[] | undefined
  scenarios: Scenario[]
  taskset: boolean
  serverCpu: number
  loadCpu: number
  startupTimeoutSec: number
  serverNodeArgs: string[]
  /** Features the duet targets' clients ask for at bind (FEATURES=receipts): the cost of the signals. */
  features: string[] | undefined
  /** Share of the pairs whose recipient never connects (OFFLINE=0.5). */
  offline: number
  /** Load bench/probe.ts into every server: GC pauses and event-loop delay of the window. */
  probe: boolean
  /** Another built checkout whose duet targets run beside this one's. */
  compare: string | undefined
}

function readOptions(): Options {
  const scenarios = (list('SCENARIOS') ?? ['closed', 'open', 'idle']) as Scenario[]
  for (const s of scenarios) if (!['closed', 'open', 'idle'].includes(s)) throw new Error(`unknown scenario ${s}`)
  return {
    ...readRoundOptions(),
    idleConns: Math.floor(num('IDLE_CONNS', 10000)),
    openRate: num('OPEN_RATE', 10000),
    msgBytes: Math.floor(num('MSG_BYTES', 64)),
    connectConcurrency: Math.max(1, Math.floor(num('CONNECT_CONCURRENCY', 100))),
    sourceAddrs: Math.max(1, Math.min(254, Math.floor(num('SOURCE_ADDRS', 9)))),
    deflate: bool('DEFLATE', false),
    targets: list('TARGETS'),
    scenarios,
    taskset: bool('TASKSET', true),
    serverCpu: Math.floor(num('SERVER_CPU', 0)),
    loadCpu: Math.floor(num('LOAD_CPU', 1)),
    startupTimeoutSec: num('STARTUP_TIMEOUT', 20),
    serverNodeArgs: (opt('SERVER_NODE_ARGS') ?? '').split(/\s+/).filter((s) => s !== ''),
    features: list('FEATURES'),
    offline: Math.min(1, Math.max(0, num('OFFLINE', 0))),
    probe: bool('PROBE', false),
    compare: opt('COMPARE'),
  }
}

// ---------------------------------------------------------------------------------------------
// targets

interface Target {
  name: string
  protocol: Protocol
  /** script to run with node, relative to the repo root */
  script: string
  /** env for the server; `dir` is a fresh temporary directory for this start */
  env: (port: number, dir: string) => Record<string, string>
  url: (port: number) => string
  /** Sends its offline-message events to the driver's receiver. */
  webhook?: boolean
}

const duetEnv = (store: (dir: string) => string) => (port: number, dir: string): Record<string, string> => ({
  PORT: String(port),
  HOST: '127.0.0.1',
  STORE_URL: store(dir),
  LOG_LEVEL: 'warn',
  // The per-connection rate limit and the connection caps protect a public server; a benchmark
  // drives far more frames and connections per address than they allow, so they are off here.
  RATE_LIMIT: '0',
  MAX_CONNECTIONS: '1000000',
  MAX_CONNECTIONS_PER_IP: '1000000',
})
const wsUrl = (port: number): string => `ws://127.0.0.1:${port}/ws`

const ALL_TARGETS: Target[] = [
  { name: 'duet-memory', protocol: 'ws', script: 'dist/server.js', env: duetEnv(() => 'memory:'), url: wsUrl },
  { name: 'duet-sqlite', protocol: 'ws', script: 'dist/server.js', env: duetEnv((dir) => `sqlite:${join(dir, 'bench.db')}`), url: wsUrl },
  {
    name: 'ws',
    protocol: 'ws',
    script: 'dist/bench/baselines/ws-server.js',
    env: (port) => ({ PORT: String(port), HOST: '127.0.0.1' }),
    url: wsUrl,
  },
  {
    name: 'ws-batched',
    protocol: 'ws',
    script: 'dist/bench/baselines/ws-server.js',
    env: (port) => ({ PORT: String(port), HOST: '127.0.0.1', BATCHED: '1' }),
    url: wsUrl,
  },
  {
    name: 'socketio',
    protocol: 'sio',
    script: 'dist/bench/baselines/socketio-server.js',
    env: (port) => ({ PORT: String(port), HOST: '127.0.0.1' }),
    url: (port) => `http://127.0.0.1:${port}`,
  },
]
/** Only when named in TARGETS: the cost of the offline-message webhook (with OFFLINE). */
const WEBHOOK_TARGETS: Target[] = ALL_TARGETS.filter((t) => t.name.startsWith('duet')).map((t) => ({ ...t, name: `${t.name}+webhook`, webhook: true }))
const KNOWN_TARGETS = [...ALL_TARGETS, ...WEBHOOK_TARGETS]

/** COMPARE: the duet targets of another built checkout, named `<name>@compare`. */
function compareTargets(root: string): Target[] {
  const script = resolve(root, 'dist/server.js')
  if (!existsSync(script)) throw new Error(`COMPARE=${root}: ${script} not found (build that checkout first)`)
  return ALL_TARGETS.filter((t) => t.name.startsWith('duet')).map((t) => ({ ...t, name: `${t.name}@compare`, script }))
}
const BASELINE = 'ws'
/** The corked router: the practical limit for a server that batches its writes. */
const BATCHED_BASELINE = 'ws-batched'
let receiver: WebhookReceiver | undefined

// ---------------------------------------------------------------------------------------------
// one run

interface RunRecord extends RunOutcome<Scenario> {
  load?: LoadResult
  /** server CPU seconds during the measured window (closed/open) or the main connect phase (idle) */
  serverCpuSec?: number
  /** server CPU seconds / wall seconds of the window (1 = one full core) */
  serverCpuUtil?: number
  msgsPerCpuSec?: number
  /** RSS right after start, at the end of the window (traffic) or with all idle conns bound */
  rssStartMB?: number
  rssMB?: number
  hwmMB?: number
  /** idle: RSS after the warm-up connections, then KB per connection over the rest */
  rssWarmMB?: number
  kbPerConn?: number
  bindsPerCpuSec?: number
  /** cores used by everything else on the machine during the window (other processes, the driver) */
  otherCpu?: number
  /** `+webhook` targets: events the receiver got during the measured window */
  webhookEvents?: number
  /** PROBE=1: the server's GC pauses and event-loop delay in the window (bench/probe.ts) */
  probe?: ProbeSummary
  /** PROBE=1: what the slowest 1 % of the window's messages were in flight during (tail.ts) */
  tail?: TailAttribution
}

interface ProbeSummary {
  windowMs: number
  gc: {
    count: number
    totalMs: number
    p99Ms: number
    maxMs: number
    byKind: Record<string, { count: number; totalMs: number; maxMs: number }>
    /** The old space's growth per scavenge: about what each promoted. */
    promotedKBPerScavenge: number
    /** every pause, epoch ms */
    pauses?: Span[]
  }
  loopDelay: { p50Ms: number; p99Ms: number; maxMs: number; meanMs: number }
  /** The SQLite store's writes, by stage (probe-store.ts); absent for other stores. */
  store?: StoreSummary
}

const PROBE_JS = join(ROOT, 'dist/bench/probe.js')
const probeFile = (server: RunningServer): string => join(server.dir, 'probe.json')

/** The probe's summary, once the server has written it (a signal handler, a moment after). */
async function readProbe(server: RunningServer): Promise<ProbeSummary | undefined> {
  for (let i = 0; i < 40; i++) {
    if (existsSync(probeFile(server))) {
      try {
        return JSON.parse(readFileSync(probeFile(server), 'utf8')) as ProbeSummary
      } catch {
        // written while we read: try again
      }
    }
    await sleep(50)
  }
  return undefined
}

function loadConfig(t: Target, s: Scenario, o: Options, server: RunningServer, round: number): LoadConfig {
  return {
    protocol: t.protocol,
    scenario: s,
    url: t.url(server.port),
    ...trafficConfig(o, round, s),
    idleConns: o.idleConns,
    connectConcurrency: o.connectConcurrency,
    sourceAddrs: o.sourceAddrs,
    deflate: o.deflate,
    offline: o.offline,
    trace: o.probe,
    // The baselines know no features: they run as always, so the ratios show what the features cost.
    ...(o.features !== undefined && t.name.startsWith('duet') ? { features: o.features } : {}),
  }
}

async function runLoad(t: Target, s: Scenario, o: Options, pin: Pinning, server: RunningServer, rec: RunRecord): Promise<void> {
  const cfg = loadConfig(t, s, o, server, rec.round)
  const [cmd, args] = withFileLimit(...pinned(process.execPath, [LOAD_JS, JSON.stringify(cfg)], pin.load))
  const load = new LoadProcess<LoadEvent>(cmd, args, 'pipe')
  const pid = server.pid
  let cpu0: number | undefined
  let sys0: number | undefined
  let sysBusySec: number | undefined
  let events0 = 0
  const sysStart = (): void => {
    sys0 = systemBusySec()
    events0 = receiver?.received ?? 0
  }
  const sysEnd = (): void => {
    const sys1 = systemBusySec()
    if (sys0 !== undefined && sys1 !== undefined) sysBusySec = sys1 - sys0
    if (t.webhook === true && receiver !== undefined) rec.webhookEvents = receiver.received - events0
  }
  let result: LoadResult | undefined
  let error: string | undefined
  const go = (): void => {
    load.child.stdin?.write('go\n')
  }

  const onEvent = (ev: LoadEvent): void => {
    switch (ev.event) {
      case 'measure-start':
        cpu0 = procCpuSec(pid)
        sysStart()
        if (o.probe) server.proc.kill('SIGUSR2')
        break
      case 'measure-end': {
        if (o.probe) server.proc.kill('SIGUSR2')
        const cpu1 = procCpuSec(pid)
        sysEnd()
        if (cpu0 !== undefined && cpu1 !== undefined) rec.serverCpuSec = cpu1 - cpu0
        const m = procMem(pid)
        rec.rssMB = m?.rssMB
        rec.hwmMB = m?.hwmMB
        break
      }
      case 'idle-warm':
        rec.rssWarmMB = procMem(pid)?.rssMB
        cpu0 = procCpuSec(pid)
        sysStart()
        go()
        break
      case 'idle-bound': {
        const cpu1 = procCpuSec(pid)
        sysEnd()
        if (cpu0 !== undefined && cpu1 !== undefined) rec.serverCpuSec = cpu1 - cpu0
        break
      }
      case 'idle-ready': {
        const m = procMem(pid)
        rec.rssMB = m?.rssMB
        rec.hwmMB = m?.hwmMB
        go()
        break
      }
      case 'result':
        result = ev.result
        break
      case 'error':
        error = ev.message
        break
      case 'bound':
      case 'progress':
        break
    }
  }
  load.onEvents(onEvent)
  const exit = await load.exit((o.warmupSec + o.durationSec) * 1000 + 90_000 + o.idleConns * 20, (why) => {
    error = why
  })

  if (server.exited !== undefined) {
    error = `server died during the run (code ${server.exited.code}, signal ${server.exited.signal}); output ends with:\n${indent(server.output.toString().slice(-1500))}`
  }
  if (result === undefined || error !== undefined) {
    rec.ok = false
    const err = load.stderr.toString()
    rec.error = error ?? `load generator exited with code ${exit} without a result${err === '' ? '' : `: ${err.slice(-500)}`}`
    return
  }
  rec.ok = true
  rec.load = result
  if (o.probe && result.scenario !== 'idle') {
    rec.probe = await readProbe(server)
    if (result.tail !== undefined && rec.probe?.gc.pauses !== undefined) rec.tail = attributeTail(result.tail, rec.probe.gc.pauses)
    delete result.tail // thousands of spans: the attribution is what the JSON keeps
  }
  const wall = result.scenario === 'idle' ? result.bindSec : result.wallSec
  if (sysBusySec !== undefined && rec.serverCpuSec !== undefined && wall > 0) {
    rec.otherCpu = Math.max(0, (sysBusySec - rec.serverCpuSec) / wall - result.loadCpu)
  }
  if (result.scenario === 'idle') {
    if (rec.rssMB !== undefined && rec.rssWarmMB !== undefined) {
      const added = result.conns - result.warmConns
      if (added > 0) rec.kbPerConn = ((rec.rssMB - rec.rssWarmMB) * 1024) / added
    }
    const bound = result.conns - result.warmConns
    if (rec.serverCpuSec !== undefined && rec.serverCpuSec > 0 && bound > 0) rec.bindsPerCpuSec = bound / rec.serverCpuSec
  } else if (rec.serverCpuSec !== undefined) {
    rec.serverCpuUtil = rec.serverCpuSec / result.wallSec
    if (rec.serverCpuSec > 0) rec.msgsPerCpuSec = result.acked / rec.serverCpuSec
  }
}

const floorLine = (f: FsyncFloor): string => `p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, max ${f.maxMs} ms (${f.samples} samples)`

/** GC and event-loop delay of one window, in a line. */
function probeLine(p: ProbeSummary): string {
  const kinds = Object.entries(p.gc.byKind)
    .map(([kind, k]) => `${kind} ${k.count}× ${k.totalMs.toFixed(0)} ms (max ${k.maxMs.toFixed(1)})`)
    .join(', ')
  const share = ((p.gc.totalMs / p.windowMs) * 100).toFixed(1)
  const line = `GC ${p.gc.totalMs.toFixed(0)} ms = ${share} % of the window, p99 ${p.gc.p99Ms} ms, max ${p.gc.maxMs} ms [${kinds}; ~${p.gc.promotedKBPerScavenge} KB promoted a scavenge]; loop delay p50 ${p.loopDelay.p50Ms} ms, p99 ${p.loopDelay.p99Ms} ms, max ${p.loopDelay.maxMs} ms`
  return p.store === undefined ? line : `${line}\n      ${storeLine(p.store)}`
}

/** The SQLite store's stages in a line: p50/p99 of each, and what the slowest 1 % of writes waited for. */
function storeLine(s: StoreSummary): string {
  const stage = (name: string, f: Spread): string => `${name} ${f.p50}/${f.p99}`
  const slow = s.slowest
  return (
    `store (p50/p99 ms): ${[stage('queue', s.queueMs), stage('commit', s.commitMs), stage('sync', s.syncMs), stage('total', s.totalMs)].join(', ')}; ` +
    `batch ${s.batchSize.p50}/${s.batchSize.p99} writes; slowest 1 %: queue ${slow.queueMs} + commit ${slow.commitMs} + sync ${slow.syncMs} ms (batch ${slow.batchSize})`
  )
}

// ---------------------------------------------------------------------------------------------
// summary

type Summary = Record<string, Record<string, Agg | undefined>>

function summarize(records: RunRecord[], scenario: Scenario, targets: string[]): { text: string; summary: Summary } {
  const summary: Summary = {}
  const rows: string[][] = []
  const notes: string[] = []
  const rounds = [...new Set(records.map((r) => r.round))]
  const baseOf = (round: number, baseline = BASELINE): RunRecord | undefined =>
    records.find((r) => r.round === round && r.scenario === scenario && r.target === baseline && r.ok)

  for (const name of targets) {
    const { ok: recs, failed } = runsOf(records, scenario, name)
    if (recs.length === 0) {
      if (failed.length > 0) notes.push(`${name}: no successful run (${oneLine(failed[0].error ?? 'failed')})`)
      continue
    }
    if (failed.length > 0) notes.push(`${name}: ${failed.length} failed run(s); figures are over the others`)
    // ratio to a baseline of the same round (ws, or the corked ws-batched)
    const ratiosTo = (baseline: string): Array<number | undefined> =>
      rounds.map((round) => {
        const mine = recs.find((r) => r.round === round)
        const base = baseOf(round, baseline)
        if (mine === undefined || base === undefined) return undefined
        if (scenario === 'idle') return mine.kbPerConn !== undefined && base.kbPerConn ? mine.kbPerConn / base.kbPerConn : undefined
        return mine.msgsPerCpuSec !== undefined && base.msgsPerCpuSec ? mine.msgsPerCpuSec / base.msgsPerCpuSec : undefined
      })
    const ratios = ratiosTo(BASELINE)
    const loadCpu = agg(recs.map((r) => r.load?.loadCpu))
    if (loadCpu !== undefined && loadCpu.max > 0.9) {
      notes.push(`${name}: the load generator used ${loadCpu.max.toFixed(2)} of its core — it may be the bottleneck`)
    }
    const other = agg(recs.map((r) => r.otherCpu))
    if (other !== undefined && other.max > 0.15) {
      notes.push(`${name}: other processes used up to ${other.max.toFixed(2)} cores during its windows — figures are disturbed`)
    }
    const errs = recs.reduce((n, r) => n + (r.load !== undefined && r.load.scenario !== 'idle' ? r.load.errors + r.load.unacked : 0), 0)
    if (errs > 0) notes.push(`${name}: ${errs} error replies / unacked messages (see JSON)`)

    if (scenario === 'idle') {
      const idle = recs.map((r) => r.load as IdleResult)
      const s = {
        conns: agg(idle.map((l) => l.conns)),
        bindsPerSec: agg(idle.map((l) => l.bindsPerSec)),
        bindsPerCpuSec: agg(recs.map((r) => r.bindsPerCpuSec)),
        kbPerConn: agg(recs.map((r) => r.kbPerConn)),
        ratioKbPerConn: agg(ratios),
        rssMB: agg(recs.map((r) => r.rssMB)),
        loadCpu,
      }
      summary[name] = s
      const failedConns = idle.reduce((n, l) => n + l.failed, 0)
      if (failedConns > 0) notes.push(`${name}: ${failedConns} idle connections failed to bind`)
      rows.push([name, fmt(s.conns, 0), fmt(s.bindsPerSec, 0), fmt(s.bindsPerCpuSec, 0), fmt(s.kbPerConn, 1), fmt(s.ratioKbPerConn, 2, '×'), fmt(s.rssMB, 1), fmt(s.loadCpu, 2)])
    } else {
      const tr = recs.map((r) => r.load as TrafficResult)
      const s = {
        ackedPerSec: agg(tr.map((l) => l.ackedPerSec)),
        msgsPerCpuSec: agg(recs.map((r) => r.msgsPerCpuSec)),
        ratio: agg(ratios),
        ratioBatched: agg(ratiosTo(BATCHED_BASELINE)),
        serverCpu: agg(recs.map((r) => r.serverCpuUtil)),
        p50Ms: agg(tr.map((l) => l.latency.p50Ms)),
        p99Ms: agg(tr.map((l) => l.latency.p99Ms)),
        maxMs: agg(tr.map((l) => l.latency.maxMs)),
        scheduledP99Ms: agg(tr.map((l) => l.scheduledLatency?.p99Ms)),
        rssMB: agg(recs.map((r) => r.rssMB)),
        loadCpu,
      }
      summary[name] = s
      const row = [name, fmt(s.ackedPerSec, 0), fmt(s.msgsPerCpuSec, 0), fmt(s.ratio, 2, '×'), fmt(s.ratioBatched, 2, '×'), fmt(s.serverCpu, 2), fmt(s.p50Ms, 2), fmt(s.p99Ms, 2), fmt(s.maxMs, 1)]
      if (scenario === 'open') row.push(fmt(s.scheduledP99Ms, 2))
      row.push(fmt(s.rssMB, 1), fmt(s.loadCpu, 2))
      rows.push(row)
    }
  }

  let header: string[]
  let title: string
  if (scenario === 'idle') {
    title = 'idle: N bound idle connections (KB/conn = RSS growth / connections, after 1 s settle)'
    header = ['target', 'conns', 'binds/s', 'binds/CPU-s', 'KB/conn', 'KB/conn ×ws', 'RSS MB', 'load CPU']
  } else {
    header = ['target', 'msg/s', 'msg/CPU-s', '×ws', '×batched', 'srv CPU', 'p50 ms', 'p99 ms', 'max ms']
    if (scenario === 'open') header.push('sched p99')
    header.push('RSS MB', 'load CPU')
    title =
      scenario === 'closed'
        ? 'closed loop: pairs exchanging messages, window of un-acked sends per client (saturation)'
        : 'open loop: fixed offered rate; latency send→ack (sched p99: from the scheduled send time)'
  }
  const text = [`## ${title}`, '', rows.length > 0 ? table(header, rows) : '(no results)', ...notes.map((n) => `- ${n}`)].join('\n')
  return { text, summary }
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  const o = readOptions()
  if (!existsSync(LOAD_JS)) throw new Error(`${LOAD_JS} not found: run npm run build first`)
  const known = [...KNOWN_TARGETS, ...(o.compare === undefined ? [] : compareTargets(o.compare))]
  const targets = o.targets === undefined ? known.filter((t) => !t.webhook) : known.filter((t) => o.targets!.includes(t.name))
  for (const name of o.targets ?? []) {
    if (!known.some((t) => t.name === name)) throw new Error(`unknown target ${name}; known: ${known.map((t) => t.name).join(', ')}`)
  }
  if (targets.some((t) => t.webhook === true)) receiver = await WebhookReceiver.start()

  const ncpu = cpus().length
  const canPin = o.taskset && ncpu >= 2 && Math.max(o.serverCpu, o.loadCpu) < ncpu && hasTaskset()
  const pin: Pinning = canPin
    ? { server: ['-c', String(o.serverCpu)], load: ['-c', String(o.loadCpu)] }
    : { server: [], load: [] }
  if (canPin) pinSelf(o.loadCpu)

  const fdLimit = openFileLimit()
  if (o.scenarios.includes('idle') && fdLimit !== undefined && o.idleConns + 200 > fdLimit) {
    console.warn(`warning: IDLE_CONNS=${o.idleConns} but the open-file limit is ${fdLimit}; raise it with ulimit -n`)
  }

  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: ncpu,
    memGB: +(totalmem() / 2 ** 30).toFixed(1),
    freeMemGB: +(freemem() / 2 ** 30).toFixed(1),
    kernel: release(),
    node: process.version,
    pinned: canPin ? `server on CPU ${o.serverCpu}, load generator on CPU ${o.loadCpu}` : 'no (taskset unavailable or disabled)',
    clkTck,
    openFileLimit: fdLimit,
    duetLimits: 'RATE_LIMIT=0, MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP raised, HEARTBEAT_MS default',
  }
  console.log(`duet bench: ${targets.map((t) => t.name).join(', ')} × ${o.scenarios.join(', ')} × ${o.rounds} round(s)`)
  console.log(
    `  duration ${o.durationSec} s (+${o.warmupSec} s warm-up), ${o.pairs} pairs, window ${o.window}, open rate ${o.openRate}/s, idle ${o.idleConns} conns, msg ${o.msgBytes} B`,
  )
  console.log(`  ${machine.cpu}, ${ncpu} cores, node ${machine.node}; pinning: ${machine.pinned}`)
  console.log('  duet runs with RATE_LIMIT=0 and the connection caps raised: a benchmark is the flood they stop')

  const startedAt = new Date()
  // The disk's floor under a durable ack, before and after the servers (the VM's disk varies).
  const fsyncFloors: FsyncFloor[] = [measureFsyncFloor()]
  console.log(`  fdatasync floor: ${floorLine(fsyncFloors[0]!)}`)
  const records: RunRecord[] = []
  const dead = new Map<string, string>() // target -> why it is skipped

  for (let round = 1; round <= o.rounds; round++) {
    for (const s of o.scenarios) {
      for (const t of targets) {
        if (dead.has(t.name)) continue
        const rec: RunRecord = { round, target: t.name, scenario: s, ok: false }
        process.stdout.write(`round ${round}/${o.rounds}  ${s.padEnd(6)}  ${t.name.padEnd(12)} `)
        const server = await startServer({
          name: t.name,
          script: t.script,
          env: (port, dir) => ({
            ...t.env(port, dir),
            ...(t.webhook === true ? { WEBHOOK_URL: receiver!.url, WEBHOOK_SECRET: BENCH_WEBHOOK_SECRET } : {}),
            ...(o.probe ? { DUET_PROBE_FILE: join(dir, 'probe.json') } : {}),
          }),
          nodeArgs: o.probe ? ['--import', PROBE_JS, ...o.serverNodeArgs] : o.serverNodeArgs,
          pin: pin.server,
          startupTimeoutSec: o.startupTimeoutSec,
        })
        if (typeof server === 'string') {
          console.log(`SKIPPED: failed to start: ${server}`)
          dead.set(t.name, server)
          rec.error = `failed to start: ${server}`
          records.push(rec)
          continue
        }
        await sleep(300) // let the startup settle
        rec.rssStartMB = procMem(server.pid)?.rssMB
        try {
          await runLoad(t, s, o, pin, server, rec)
        } finally {
          await stopServer(server)
        }
        records.push(rec)
        if (!rec.ok) console.log(`FAILED: ${rec.error}`)
        else if (rec.load?.scenario === 'idle') {
          console.log(`${Math.round(rec.load.bindsPerSec)} binds/s, ${rec.kbPerConn?.toFixed(1) ?? '?'} KB/conn`)
        } else if (rec.load !== undefined) {
          console.log(
            `${Math.round(rec.load.ackedPerSec)} msg/s, ${rec.msgsPerCpuSec !== undefined ? Math.round(rec.msgsPerCpuSec) : '?'} msg/CPU-s, p99 ${rec.load.latency.p99Ms} ms, load CPU ${rec.load.loadCpu.toFixed(2)}` +
              (rec.webhookEvents === undefined ? '' : `, ${Math.round(rec.webhookEvents / rec.load.wallSec)} webhook events/s`) +
              (rec.probe === undefined ? '' : `\n      ${probeLine(rec.probe)}`) +
              (rec.tail === undefined ? '' : `\n      ${tailLine(rec.tail)}`),
          )
        }
        await sleep(500)
      }
    }
  }

  fsyncFloors.push(measureFsyncFloor())
  const names = targets.map((t) => t.name)
  const summaries: Record<string, Summary> = {}
  const texts: string[] = []
  for (const s of o.scenarios) {
    const { text, summary } = summarize(records, s, names)
    summaries[s] = summary
    texts.push(text)
  }
  const finishedAt = new Date()
  console.log('')
  console.log(texts.join('\n\n'))
  console.log(`\nwrite(8 KB) + fdatasync, the physical floor of a durable ack: before ${floorLine(fsyncFloors[0]!)}; after ${floorLine(fsyncFloors[1]!)}`)
  for (const [name, why] of dead) console.log(`skipped ${name}: ${oneLine(why)}`)
  console.log(
    `\nmedians (min–max) over ${o.rounds} round(s); ×ws, ×batched = ratio to the ws and ws-batched (corked per turn) baselines of the same round (msg per server-CPU-second; KB/conn for idle); srv CPU / load CPU = cores used during the window`,
  )

  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(
    file,
    JSON.stringify({ startedAt, finishedAt, machine, options: o, fsyncFloors, targets: names, skipped: Object.fromEntries(dead), summary: summaries, tables: texts, runs: records }, null, 2) + '\n',
  )
  copyFileSync(file, join(RESULTS_DIR, 'latest.json'))
  console.log(`results: ${file.slice(ROOT.length)}`)
  await receiver?.close()
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
