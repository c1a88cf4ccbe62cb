// Cluster benchmark: `npm run bench:cluster` (builds, then runs dist/bench/cluster.js).
//
// Measures cross-node delivery beside a single node, in one run, on one PostgreSQL:
//   single         1 node, PostgreSQL store, no Redis: the in-process presence and broker
//   cluster-same   2 nodes on Redis, each pair's two users on the same node (pair i on node
//                  i mod 2): what cluster mode costs when no message crosses nodes
//   cluster-split  2 nodes on Redis, a_i on node 1 and b_i on node 2: every message crosses
// so cluster-same minus single is the cost of Redis presence, and cluster-split minus
// cluster-same the cost of the hop itself (pub/sub, a second process handling the push).
//
// For each round, each scenario, each target (interleaved, so drift hits every target alike):
// an empty PostgreSQL schema and no Redis keys, start the target's nodes, run the load
// generator (bench/cluster-load.ts: bench/load.ts cannot put a pair's users on different
// nodes nor time the push at the peer), read each node's CPU time (/proc) plus Redis's and the
// run's PostgreSQL backends' at the start and end of the measured window, stop the nodes.
// Prints one table (medians over rounds) and writes everything to bench/results/cluster-<time>.json.
//
// Everything stays on loopback, in its own namespace, and is removed at the end: the schema
// duet_bench_<random> in PG_URL's database (dropped), the Redis key prefix duet_bench_<random>:
// on REDIS_URL (its keys deleted by SCAN; never FLUSHDB, others share that Redis).
//
// Options, as env vars or argv (`ROUNDS=2`, `--duration=5`; argv wins):
//   ROUNDS (3)  DURATION s (10)  WARMUP s (2)  PAIRS (50)  WINDOW (10)  OPEN_RATE msg/s (3000)
//   SCENARIOS (closed,open)  TARGETS (single,cluster-same,cluster-split)  MSG_BYTES (64)
//   PG_URL (postgres://postgres@127.0.0.1:5432/test)  REDIS_URL (redis://127.0.0.1:6379)
//   TASKSET (1)  NODE_CPUS (comma list, node i on entry i mod length; default 0 with < 4 cores,
//   else 0,1)  LOAD_CPU (1 with < 4 cores, else 2)  STARTUP_TIMEOUT s (30)
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { ClusterLoadConfig, ClusterLoadEvent, ClusterTrafficResult, Placement } from './cluster-types.js'
import { clkTck, freePort, hasTaskset, LoadProcess, pinSelf, procCpuSec, ROOT, sleep, systemBusySec, Tail } from './proc.js'
import { bool, list, num, opt, readRoundOptions, trafficConfig, type RoundOptions } from './options.js'
import { agg, fmt, fmtMedian, runsOf, table, type Agg, type RunOutcome } from './report.js'

const SERVER_JS = join(ROOT, 'dist/server.js')
const LOAD_JS = join(ROOT, 'dist/bench/cluster-load.js')
const RESULTS_DIR = join(ROOT, 'bench/results')

// ---------------------------------------------------------------------------------------------
// options

type Scenario = 'closed' | 'open'

interface Target {
  name: string
  what: string
  nodes: number
  redis: boolean
  placement: Placement
}

const ALL_TARGETS: Target[] = [
  { name: 'single', what: '1 node, PostgreSQL, no Redis', nodes: 1, redis: false, placement: 'same' },
  { name: 'cluster-same', what: '2 nodes on Redis + PostgreSQL, each pair on one node', nodes: 2, redis: true, placement: 'same' },
  { name: 'cluster-split', what: '2 nodes on Redis + PostgreSQL, a_i on n1, b_i on n2', nodes: 2, redis: true, placement: 'split' },
]

interface Options extends RoundOptions {
  openRate: number
  msgBytes: number
  scenarios: Scenario[]
  targets: Target[]
  pgUrl: string
  redisUrl: string
  taskset: boolean
  nodeCpus: number[]
  loadCpu: number
  startupTimeoutSec: number
}

function readOptions(): Options {
  const scenarios = (list('SCENARIOS') ?? ['closed', 'open']) as Scenario[]
  for (const s of scenarios) if (s !== 'closed' && s !== 'open') throw new Error(`unknown scenario ${s}: closed or open`)
  const names = list('TARGETS') ?? ALL_TARGETS.map((t) => t.name)
  const targets = names.map((n) => {
    const t = ALL_TARGETS.find((x) => x.name === n)
    if (t === undefined) throw new Error(`unknown target ${n}; known: ${ALL_TARGETS.map((x) => x.name).join(', ')}`)
    return t
  })
  // With few cores, both nodes share one and the load generator gets the other: the cluster
  // then runs on the same CPU budget as the single node, and Redis and PostgreSQL float.
  const many = cpus().length >= 4
  const nodeCpus = (list('NODE_CPUS') ?? (many ? ['0', '1'] : ['0'])).map(Number)
  if (nodeCpus.some((c) => !Number.isInteger(c) || c < 0)) throw new Error('NODE_CPUS: a comma list of CPU numbers')
  return {
    ...readRoundOptions(),
    openRate: num('OPEN_RATE', 3000),
    msgBytes: Math.floor(num('MSG_BYTES', 64)),
    scenarios,
    targets,
    pgUrl: opt('PG_URL') ?? 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: opt('REDIS_URL') ?? 'redis://127.0.0.1:6379',
    taskset: bool('TASKSET', true),
    nodeCpus,
    loadCpu: Math.floor(num('LOAD_CPU', many ? 2 : 1)),
    startupTimeoutSec: num('STARTUP_TIMEOUT', 30),
  }
}

/** Loopback only: the bench starts servers and drops a schema; it must not aim elsewhere. */
function assertLoopback(url: string, what: string): void {
  const host = new URL(url).hostname
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) throw new Error(`${what} must be on loopback, got host ${host}`)
}

// ---------------------------------------------------------------------------------------------
// /proc (the readings of proc.ts, per process)

interface ProcCpu {
  comm: string
  kernel: boolean
  cpu: number
}

/**
 * CPU seconds of every process on the machine, by pid, with its command name: to tell the
 * load of other people's processes from our own when the figures look disturbed.
 */
function allProcs(): Map<number, ProcCpu> {
  const out = new Map<number, ProcCpu>()
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    return out
  }
  for (const d of pids) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // field 9 (flags) has PF_KTHREAD for kernel threads: block-device writeback for
      // PostgreSQL's fsyncs, softirq, ... busy because of the bench, not somebody else
      const kernel = (Number(fields[6]) & 0x00200000) !== 0
      out.set(Number(d), { comm, kernel, cpu: (Number(fields[11]) + Number(fields[12])) / clkTck })
    } catch {
      // gone meanwhile
    }
  }
  return out
}

function rssMB(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb === undefined ? undefined : Number(kb) / 1024
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// the shared services: a schema of our own, a key prefix of our own

class Services {
  readonly schema: string
  readonly prefix: string
  /** every node's PostgreSQL connections carry this, so their backends can be found */
  readonly appName: string
  private readonly redis: Redis
  redisPid: number | undefined

  constructor(readonly o: Options) {
    const id = randomBytes(5).toString('hex')
    this.schema = `duet_bench_${id}`
    this.prefix = `duet_bench_${id}:`
    this.appName = `duet_bench_${id}`
    this.redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true })
  }

  storeUrl(node: string): string {
    const u = new URL(this.o.pgUrl)
    u.searchParams.set('schema', this.schema)
    // node-postgres lets the URL's application_name win over the store's own 'duet'
    u.searchParams.set('application_name', `${this.appName}_${node}`)
    return u.toString()
  }

  async start(): Promise<void> {
    await this.redis.connect()
    // Redis's CPU is read from /proc when it runs on this machine (it does on loopback).
    const pid = Number(/process_id:(\d+)/.exec(await this.redis.info('server'))?.[1])
    this.redisPid = Number.isInteger(pid) && procCpuSec(pid) !== undefined ? pid : undefined
    await this.pg((c) => c.query('SELECT 1'))
  }

  redisCpuSec(): number | undefined {
    return this.redisPid === undefined ? undefined : procCpuSec(this.redisPid)
  }

  /** CPU seconds of each of this run's PostgreSQL backends, by pid. */
  async pgBackendCpu(): Promise<Map<number, number>> {
    const { rows } = await this.pg((c) =>
      c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1', [`${this.appName}\\_%`]),
    )
    const out = new Map<number, number>()
    for (const { pid } of rows) {
      const cpu = procCpuSec(pid)
      if (cpu !== undefined) out.set(pid, cpu)
    }
    return out
  }

  /** Between runs and at the end: nothing of ours left in PostgreSQL or Redis. */
  async reset(): Promise<void> {
    await this.pg(async (c) => {
      // bounded: a straggling backend must not hang the bench
      await c.query("SET lock_timeout = '10s'")
      await c.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`)
    })
    await this.deleteKeys()
  }

  private async deleteKeys(): Promise<void> {
    if (!this.prefix.startsWith('duet_bench_')) throw new Error(`refusing to delete keys under ${this.prefix}`)
    let cursor = '0'
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await this.redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  }

  async close(): Promise<void> {
    this.redis.disconnect()
  }

  private async pg<T>(run: (c: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: this.o.pgUrl, application_name: 'duet_bench_driver' })
    await client.connect()
    try {
      return await run(client)
    } finally {
      await client.end()
    }
  }
}

// ---------------------------------------------------------------------------------------------
// nodes

interface Node {
  name: string
  proc: ChildProcess
  pid: number
  port: number
  output: Tail
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
}

/** Every child we started, so an interrupted bench leaves nothing running. */
const children = new Set<ChildProcess>()

function pinned(cmd: string, args: string[], cpu: number | undefined): [string, string[]] {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]]
}

async function startNode(name: string, t: Target, svc: Services, o: Options, cpu: number | undefined): Promise<Node> {
  const port = await freePort()
  // A clean environment: a REDIS_URL or JWT_SECRET in ours must not turn the single node into
  // a cluster node or switch auth on.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    NODE_ID: `bench-${name}`,
    STORE_URL: svc.storeUrl(name),
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    // The per-connection rate limit and the per-address cap protect a public server; the bench
    // drives far more frames per connection and connections per address than they allow.
    RATE_LIMIT: '0',
    MAX_CONNECTIONS_PER_IP: '100000',
  }
  if (t.redis) {
    env.REDIS_URL = o.redisUrl
    env.REDIS_PREFIX = svc.prefix
  }
  const [cmd, args] = pinned(process.execPath, [SERVER_JS], cpu)
  const proc = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(proc)
  const output = new Tail(3000)
  proc.stdout?.on('data', (c: Buffer) => output.push(c))
  proc.stderr?.on('data', (c: Buffer) => output.push(c))
  const node: Node = { name, proc, pid: proc.pid ?? -1, port, output, exited: undefined }
  proc.on('exit', (code, signal) => {
    node.exited = { code, signal }
    children.delete(proc)
  })
  proc.on('error', (err) => {
    output.push(`spawn error: ${err.message}\n`)
    node.exited = { code: -1, signal: null }
  })
  // /readyz rather than an open port: it answers 200 once the store is migrated and, in
  // cluster mode, Redis presence and the broker subscription are up.
  const deadline = Date.now() + o.startupTimeoutSec * 1000
  while (Date.now() < deadline && node.exited === undefined) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })
      if (res.status === 200) return node
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  await stopNode(node)
  throw new Error(`node ${name} did not become ready (${node.exited ? `exited ${node.exited.code ?? node.exited.signal}` : 'timeout'}): ${node.output.toString().slice(-800)}`)
}

async function stopNode(n: Node): Promise<void> {
  if (n.exited !== undefined) return
  // SIGTERM: a graceful leave, so the node's presence is gone before the next target starts
  n.proc.kill('SIGTERM')
  for (let i = 0; i < 100 && n.exited === undefined; i++) await sleep(100)
  if (n.exited === undefined) {
    n.proc.kill('SIGKILL')
    for (let i = 0; i < 20 && n.exited === undefined; i++) await sleep(100)
  }
}

// ---------------------------------------------------------------------------------------------
// one run

interface CpuSample {
  nodes: Array<number | undefined>
  redis: number | undefined
  pg: Map<number, number>
  system: number | undefined
  procs: Map<number, ProcCpu>
}

interface RunRecord extends RunOutcome<Scenario> {
  load?: ClusterTrafficResult
  /** cores used by each node during the window (1 = one full core) */
  nodeCpu?: Array<number | undefined>
  /** cores used by the Redis server (all its clients, not only ours) */
  redisCpu?: number
  /** cores used by this run's PostgreSQL backends */
  pgCpu?: number
  /** acked messages per CPU second of the duet nodes together */
  msgsPerNodeCpuSec?: number
  /**
   * cores used by every other user process during the window (PostgreSQL's own workers,
   * anything else running on the machine), and the biggest of them by command name
   */
  otherCpu?: number
  otherTop?: Record<string, number>
  /** cores used by kernel threads (writeback of PostgreSQL's fsyncs, ksoftirqd, ...) */
  kernelCpu?: number
  /** cores busy but charged to no process still alive at the end: interrupts and softirq (loopback networking), exited processes */
  unattributedCpu?: number
  rssMB?: Array<number | undefined>
}

async function sample(nodes: Node[], svc: Services): Promise<CpuSample> {
  // the synchronous readings first, as close to the event as possible
  const s: CpuSample = {
    nodes: nodes.map((n) => procCpuSec(n.pid)),
    redis: svc.redisCpuSec(),
    system: systemBusySec(),
    pg: new Map(),
    procs: allProcs(),
  }
  s.pg = await svc.pgBackendCpu().catch(() => new Map<number, number>())
  return s
}

function diff(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : b - a
}

/** Other processes' CPU over the window, by command name, leaving out `ours`. */
function othersByComm(a: CpuSample, b: CpuSample, ours: Set<number>, kernel: boolean): Map<string, number> {
  const byComm = new Map<string, number>()
  for (const [pid, end] of b.procs) {
    if (ours.has(pid) || end.kernel !== kernel) continue
    const start = a.procs.get(pid)
    // a process started in the window counts from 0; one that ended is lost (unattributed)
    const used = end.cpu - (start !== undefined && start.comm === end.comm ? start.cpu : 0)
    if (used > 0) byComm.set(end.comm, (byComm.get(end.comm) ?? 0) + used)
  }
  return byComm
}

async function runOnce(t: Target, s: Scenario, round: number, o: Options, svc: Services, cpusFor: (i: number) => number | undefined, loadCpu: number | undefined): Promise<RunRecord> {
  const rec: RunRecord = { round, target: t.name, scenario: s, ok: false }
  await svc.reset()
  const names = t.nodes === 1 ? ['single'] : Array.from({ length: t.nodes }, (_, i) => `n${i + 1}`)
  const nodes: Node[] = []
  try {
    // Started together, as nodes.test.ts does: migrations are safe from several nodes at once.
    const started = await Promise.allSettled(names.map((name, i) => startNode(name, t, svc, o, cpusFor(i))))
    for (const r of started) if (r.status === 'fulfilled') nodes.push(r.value)
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    await sleep(300) // let the startup settle

    const cfg: ClusterLoadConfig = {
      scenario: s,
      urls: nodes.map((n) => `ws://127.0.0.1:${n.port}/ws`),
      placement: t.placement,
      ...trafficConfig(o, round, s),
      connectConcurrency: 50,
      sourceAddrs: 9,
    }
    const [cmd, args] = pinned(process.execPath, [LOAD_JS, JSON.stringify(cfg)], loadCpu)
    const load = new LoadProcess<ClusterLoadEvent>(cmd, args, 'ignore')
    const child = load.child
    children.add(child)
    child.on('close', () => children.delete(child))

    let start: Promise<CpuSample> | undefined
    let end: Promise<CpuSample> | undefined
    const loadPid = child.pid ?? -1
    let result: ClusterTrafficResult | undefined
    let error: string | undefined
    load.onEvents((ev) => {
      if (ev.event === 'measure-start') start = sample(nodes, svc)
      else if (ev.event === 'measure-end') {
        end = sample(nodes, svc)
        rec.rssMB = nodes.map((n) => rssMB(n.pid))
      } else if (ev.event === 'result') result = ev.result
      else if (ev.event === 'error') error = ev.message
    })
    const exit = await load.exit((o.warmupSec + o.durationSec) * 1000 + 60_000, (why) => {
      error = why
    })

    const died = nodes.find((n) => n.exited !== undefined)
    if (died !== undefined) error = `node ${died.name} died during the run (${died.exited?.code ?? died.exited?.signal}): ${died.output.toString().slice(-800)}`
    if (result === undefined || error !== undefined) {
      rec.error = error ?? `load generator exited with code ${exit} without a result: ${load.stderr.toString().slice(-500)}`
      return rec
    }
    rec.ok = true
    rec.load = result
    if (start === undefined || end === undefined) return rec
    const [a, b] = await Promise.all([start, end])
    const wall = result.wallSec
    const nodeSec = nodes.map((_, i) => diff(a.nodes[i], b.nodes[i]))
    rec.nodeCpu = nodeSec.map((x) => (x === undefined ? undefined : x / wall))
    const redisSec = diff(a.redis, b.redis)
    if (redisSec !== undefined) rec.redisCpu = redisSec / wall
    let pgSec = 0
    for (const [pid, cpu] of b.pg) pgSec += cpu - (a.pg.get(pid) ?? 0) // a backend opened in the window counts from 0
    rec.pgCpu = pgSec / wall
    const nodesTotal = nodeSec.reduce<number>((sum, x) => sum + (x ?? 0), 0)
    if (nodesTotal > 0) rec.msgsPerNodeCpuSec = result.acked / nodesTotal
    const ours = new Set([...nodes.map((n) => n.pid), loadPid, process.pid, ...b.pg.keys()])
    const redisPid = svc.redisPid
    if (redisPid !== undefined) ours.add(redisPid)
    const others = othersByComm(a, b, ours, false)
    const othersSec = [...others.values()].reduce((x, y) => x + y, 0)
    const kernelSec = [...othersByComm(a, b, ours, true).values()].reduce((x, y) => x + y, 0)
    rec.otherCpu = othersSec / wall
    rec.kernelCpu = kernelSec / wall
    rec.otherTop = Object.fromEntries(
      [...others].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([comm, sec]) => [comm, +(sec / wall).toFixed(3)]),
    )
    const loadSec = diff(a.procs.get(loadPid)?.cpu, b.procs.get(loadPid)?.cpu) ?? result.loadCpu * wall
    const sys = diff(a.system, b.system)
    if (sys !== undefined) rec.unattributedCpu = Math.max(0, (sys - nodesTotal - (redisSec ?? 0) - pgSec - loadSec - othersSec - kernelSec) / wall)
    return rec
  } catch (err) {
    rec.error = err instanceof Error ? err.message : String(err)
    return rec
  } finally {
    await Promise.all(nodes.map(stopNode))
  }
}

// ---------------------------------------------------------------------------------------------
// summary

type Summary = Record<string, Agg | undefined>

function summarize(records: RunRecord[], o: Options): { text: string; summary: Record<string, Summary> } {
  const header = ['scenario', 'target', 'msg/s', 'ack p50', 'ack p99', 'ack max', 'dlv p50', 'dlv p99', 'dlv max', 'CPU n1', 'CPU n2', 'redis', 'pg', 'rest', 'msg/node-CPU-s', 'load CPU']
  const rows: string[][] = []
  const notes: string[] = []
  const summary: Record<string, Summary> = {}
  for (const s of o.scenarios) {
    for (const t of o.targets) {
      const { ok: recs, failed } = runsOf(records, s, t.name)
      const key = `${s}/${t.name}`
      if (failed.length > 0) notes.push(`${key}: ${failed.length} failed run(s): ${failed[0]!.error?.replace(/\s+/g, ' ').slice(0, 300)}`)
      if (recs.length === 0) continue
      const l = recs.map((r) => r.load!)
      const sm: Summary = {
        ackedPerSec: agg(l.map((x) => x.ackedPerSec)),
        deliveredPerSec: agg(l.map((x) => x.deliveredPerSec)),
        ackP50Ms: agg(l.map((x) => x.latency.p50Ms)),
        ackP99Ms: agg(l.map((x) => x.latency.p99Ms)),
        ackMaxMs: agg(l.map((x) => x.latency.maxMs)),
        deliveryP50Ms: agg(l.map((x) => x.delivery.p50Ms)),
        deliveryP99Ms: agg(l.map((x) => x.delivery.p99Ms)),
        deliveryMaxMs: agg(l.map((x) => x.delivery.maxMs)),
        scheduledAckP99Ms: agg(l.map((x) => x.scheduledLatency?.p99Ms)),
        cpuN1: agg(recs.map((r) => r.nodeCpu?.[0])),
        cpuN2: agg(recs.map((r) => r.nodeCpu?.[1])),
        redisCpu: agg(recs.map((r) => r.redisCpu)),
        pgCpu: agg(recs.map((r) => r.pgCpu)),
        msgsPerNodeCpuSec: agg(recs.map((r) => r.msgsPerNodeCpuSec)),
        loadCpu: agg(l.map((x) => x.loadCpu)),
        otherCpu: agg(recs.map((r) => r.otherCpu)),
        unattributedCpu: agg(recs.map((r) => r.unattributedCpu)),
        kernelCpu: agg(recs.map((r) => r.kernelCpu)),
        restCpu: agg(recs.map((r) => (r.otherCpu === undefined || r.unattributedCpu === undefined ? undefined : r.otherCpu + (r.kernelCpu ?? 0) + r.unattributedCpu))),
      }
      summary[key] = sm
      const rate = s === 'open' ? `${fmtMedian(sm.ackedPerSec, 0)} of ${o.openRate}` : fmt(sm.ackedPerSec, 0)
      rows.push([
        s, t.name, rate,
        fmtMedian(sm.ackP50Ms, 2), fmtMedian(sm.ackP99Ms, 2), fmtMedian(sm.ackMaxMs, 1),
        fmtMedian(sm.deliveryP50Ms, 2), fmtMedian(sm.deliveryP99Ms, 2), fmtMedian(sm.deliveryMaxMs, 1),
        fmtMedian(sm.cpuN1, 2), t.nodes > 1 ? fmtMedian(sm.cpuN2, 2) : '–', t.redis ? fmtMedian(sm.redisCpu, 2) : '–', fmtMedian(sm.pgCpu, 2), fmtMedian(sm.restCpu, 2),
        fmtMedian(sm.msgsPerNodeCpuSec, 0), fmtMedian(sm.loadCpu, 2),
      ])
      const bad = l.reduce((n, x) => n + x.errors + x.unacked + x.undelivered + x.unexpected, 0)
      if (bad > 0) {
        const sum = (f: (x: ClusterTrafficResult) => number): number => l.reduce((n, x) => n + f(x), 0)
        notes.push(`${key}: ${sum((x) => x.errors)} error replies, ${sum((x) => x.unacked)} unacked, ${sum((x) => x.undelivered)} undelivered, ${sum((x) => x.unexpected)} unexpected pushes (all rounds)`)
      }
      if ((sm.loadCpu?.max ?? 0) > 0.9) notes.push(`${key}: the load generator used up to ${sm.loadCpu!.max.toFixed(2)} of its core — it may be the bottleneck`)
      // PostgreSQL's background workers idle at a few hundredths of a core; more is somebody else
      if ((sm.otherCpu?.max ?? 0) > 0.15) {
        const worst = recs.reduce((x, y) => ((y.otherCpu ?? 0) > (x.otherCpu ?? 0) ? y : x))
        const top = Object.entries(worst.otherTop ?? {}).map(([comm, c]) => `${comm} ${c.toFixed(2)}`).join(', ')
        notes.push(`${key}: other processes used up to ${sm.otherCpu!.max.toFixed(2)} cores during its windows (${top}) — figures may be disturbed`)
      }
      if (s === 'open' && (sm.scheduledAckP99Ms?.median ?? 0) > 2 * (sm.ackP99Ms?.median ?? 0) + 5) {
        notes.push(`${key}: ack p99 from the scheduled send time is ${fmtMedian(sm.scheduledAckP99Ms, 1)} ms: the offered rate was not kept up with`)
      }
    }
  }
  const text = [table(header, rows, 2), ...notes.map((n) => `- ${n}`)].join('\n')
  return { text, summary }
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  const o = readOptions()
  assertLoopback(o.pgUrl, 'PG_URL')
  assertLoopback(o.redisUrl, 'REDIS_URL')
  for (const f of [SERVER_JS, LOAD_JS]) if (!existsSync(f)) throw new Error(`${f} not found: run npm run build first`)

  const ncpu = cpus().length
  const canPin = o.taskset && ncpu >= 2 && Math.max(o.loadCpu, ...o.nodeCpus) < ncpu && hasTaskset()
  const cpusFor = (i: number): number | undefined => (canPin ? o.nodeCpus[i % o.nodeCpus.length] : undefined)
  const loadCpu = canPin ? o.loadCpu : undefined
  if (canPin) pinSelf(o.loadCpu)

  const svc = new Services(o)
  const interrupted = async (): Promise<void> => {
    for (const c of children) c.kill('SIGKILL')
    await svc.reset().catch(() => undefined)
    process.exit(130)
  }
  process.once('SIGINT', () => void interrupted())
  process.once('SIGTERM', () => void interrupted())
  await svc.start()

  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: ncpu,
    memGB: +(totalmem() / 2 ** 30).toFixed(1),
    kernel: release(),
    node: process.version,
    pinned: canPin ? `nodes on CPU ${o.nodeCpus.join(',')}, load generator on CPU ${o.loadCpu}; Redis and PostgreSQL not pinned` : 'no',
  }
  const command = `npm run bench:cluster -- ${process.argv.slice(2).join(' ')}`.trim()
  console.log(`duet cluster bench: ${o.targets.map((t) => t.name).join(', ')} × ${o.scenarios.join(', ')} × ${o.rounds} round(s)`)
  console.log(`  ${o.durationSec} s (+${o.warmupSec} s warm-up), ${o.pairs} pairs, window ${o.window}, open rate ${o.openRate}/s, msg ${o.msgBytes} B`)
  console.log(`  ${machine.cpu}, ${ncpu} cores, node ${machine.node}; pinning: ${machine.pinned}`)
  console.log(`  PostgreSQL schema ${svc.schema}, Redis prefix ${svc.prefix}`)

  const startedAt = new Date()
  const records: RunRecord[] = []
  try {
    for (let round = 1; round <= o.rounds; round++) {
      for (const s of o.scenarios) {
        for (const t of o.targets) {
          process.stdout.write(`round ${round}/${o.rounds}  ${s.padEnd(6)}  ${t.name.padEnd(13)} `)
          const rec = await runOnce(t, s, round, o, svc, cpusFor, loadCpu)
          records.push(rec)
          if (!rec.ok || rec.load === undefined) console.log(`FAILED: ${rec.error?.replace(/\s+/g, ' ').slice(0, 400)}`)
          else {
            const l = rec.load
            console.log(`${Math.round(l.ackedPerSec)} msg/s, ack p99 ${l.latency.p99Ms} ms, delivery p99 ${l.delivery.p99Ms} ms, nodes CPU ${rec.nodeCpu?.map((c) => c?.toFixed(2) ?? '?').join('+')}`)
          }
          await sleep(500)
        }
      }
    }
  } finally {
    await svc.reset().catch((err: unknown) => console.error(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`))
    await svc.close()
  }

  const { text, summary } = summarize(records, o)
  const legend = [
    `medians over ${o.rounds} round(s) (msg/s closed loop: min–max in brackets); latencies in ms, from the frame handed to the socket:`,
    'ack = send→204 (stored), dlv = send→200 at the peer; CPU columns = cores used during the window',
    '(redis = the whole Redis server, pg = this run\'s PostgreSQL backends, rest = everything else busy on the machine: kernel writeback',
    'of PostgreSQL\'s fsyncs, loopback networking, PostgreSQL\'s WAL writer, other processes); msg/node-CPU-s = acked messages per CPU second',
    'of the duet nodes together.',
    ...o.targets.map((t) => `${t.name}: ${t.what}`),
  ]
  console.log('')
  console.log(text)
  console.log('')
  console.log(legend.join('\n'))

  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, `cluster-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  const { targets, ...rest } = o
  writeFileSync(
    file,
    JSON.stringify({ startedAt, finishedAt: new Date(), command, machine, options: { ...rest, targets: targets.map((t) => t.name) }, summary, table: text, legend, runs: records }, null, 2) + '\n',
  )
  console.log(`results: ${file.slice(ROOT.length)}`)
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  for (const c of children) c.kill('SIGKILL')
  process.exit(1)
})
