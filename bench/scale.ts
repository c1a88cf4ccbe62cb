// Scale bench on one node: `npm run bench:scale` (builds, then runs dist/bench/scale.js).
//   hold:   SCALE_CONNS bound connections held (from 127.0.0.1..127.0.0.<SOURCE_ADDRS>, past the
//           ephemeral-port limit of one address): bind time, RSS, KB per connection; then all of
//           them dropped at once and re-bound at once (a reconnect storm): time to the last 201.
//   volume: VOLUME_MB of messages (VOLUME_MSG_BYTES each) through the SQLite store by the closed
//           loop of load.ts, the server's RSS sampled every second: it must stay flat.
// duet runs with the SQLite default store, RATE_LIMIT=0 and the connection caps raised, server
// and load generators pinned to separate cores. Results also go to bench/results/scale-<time>.json.
// Options (env or --key=value): SCENARIOS (hold,volume)  SCALE_CONNS (20000)  SOURCE_ADDRS (9)
//   CONNECT_CONCURRENCY (200)  STORM_CONCURRENCY (500)  VOLUME_MB (1000)  VOLUME_MSG_BYTES (2000)
//   VOLUME_PAIRS (50)  VOLUME_WINDOW (10)  VOLUME_MAX_SEC (900)  SERVER_CPU (0)  LOAD_CPU (1)
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { hasTaskset, openFileLimit, openFiles, pinned, procMem, ROOT, sleep, startServer, stopServer, withFileLimit, type RunningServer } from './proc.js'
import type { PhaseResult, ScaleEvent, ScaleLoadConfig } from './scale-load.js'
import type { LoadConfig, LoadEvent, TrafficResult } from './types.js'

const args = new Map(
  process.argv.slice(2).map((a) => {
    const m = /^(?:--)?([A-Za-z][\w-]*)=(.*)$/.exec(a)
    if (m === null) throw new Error(`bad argument ${a}: use KEY=VALUE`)
    return [m[1]!.toUpperCase().replace(/-/g, '_'), m[2]!] as const
  }),
)
const opt = (name: string, def: number): number => {
  const v = args.get(name) ?? process.env[name]
  return v === undefined || v === '' ? def : Number(v)
}
const scenarios = (args.get('SCENARIOS') ?? process.env.SCENARIOS ?? 'hold,volume').split(',')
const o = {
  conns: opt('SCALE_CONNS', 20_000),
  sourceAddrs: opt('SOURCE_ADDRS', 9),
  concurrency: opt('CONNECT_CONCURRENCY', 200),
  stormConcurrency: opt('STORM_CONCURRENCY', 500),
  volumeMB: opt('VOLUME_MB', 1000),
  volumeMsgBytes: opt('VOLUME_MSG_BYTES', 2000),
  volumePairs: opt('VOLUME_PAIRS', 50),
  volumeWindow: opt('VOLUME_WINDOW', 10),
  volumeMaxSec: opt('VOLUME_MAX_SEC', 900),
}
const canPin = cpus().length >= 2 && hasTaskset()
const pin = { server: canPin ? ['-c', String(opt('SERVER_CPU', 0))] : [], load: canPin ? ['-c', String(opt('LOAD_CPU', 1))] : [] }

const duet = (name: string, dbFile = 'bench.db') => ({
  name,
  script: 'dist/server.js',
  env: (port: number, dir: string) => ({
    PORT: String(port),
    HOST: '127.0.0.1',
    STORE_URL: `sqlite:${join(dir, dbFile)}`,
    LOG_LEVEL: 'warn',
    RATE_LIMIT: '0',
    MAX_CONNECTIONS: '1000000',
    MAX_CONNECTIONS_PER_IP: '1000000',
  }),
  nodeArgs: [],
  pin: pin.server,
  startupTimeoutSec: 20,
})

/** Spawns a generator pinned to the load core; hands its JSON events to `on`. */
function generator(script: string, config: unknown, on: (ev: ScaleEvent | LoadEvent) => void): ChildProcess {
  const [cmd, argv] = withFileLimit(...pinned(process.execPath, [join(ROOT, script), JSON.stringify(config)], pin.load))
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] })
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      on(JSON.parse(line) as ScaleEvent | LoadEvent)
    } catch {
      process.stderr.write(`load: ${line}\n`)
    }
  })
  return child
}

const rss = (s: RunningServer): number => procMem(s.pid)?.rssMB ?? NaN
const mb = (x: number): string => x.toFixed(1)

// ---------------------------------------------------------------------------------------------
// hold + reconnect storm

interface HoldRecord {
  requested: number
  conns: number
  fileLimit: number | undefined
  limitedBy?: string
  generators: number
  rssIdleMB: number
  held: PhaseResult
  rssHeldMB: number
  kbPerConn: number
  dropSec: number
  storm: PhaseResult
  stormWallSec: number
  rssAfterStormMB: number
}

async function hold(): Promise<HoldRecord | string> {
  const server = await startServer(duet('duet-sqlite-hold'))
  if (typeof server === 'string') return server
  try {
    await sleep(500)
    const limit = openFileLimit()
    const baseFds = openFiles(server.pid) ?? 50
    // One descriptor per connection, plus what the server holds already and room for the storm.
    const room = limit === undefined || limit === Infinity ? o.conns : limit - baseFds - 64
    const conns = Math.min(o.conns, room)
    const perGenerator = limit === undefined || limit === Infinity ? conns : Math.max(1, limit - 200)
    const count = Math.ceil(conns / perGenerator)
    const rec: Partial<HoldRecord> = { requested: o.conns, conns, fileLimit: limit, generators: count, rssIdleMB: rss(server) }
    if (conns < o.conns) rec.limitedBy = `the open-file limit (${limit}) allows the server ${conns} connections`
    console.log(`hold: ${conns} connections from ${count} generator(s)${rec.limitedBy ? ` — ${rec.limitedBy}` : ''}`)

    const events: ScaleEvent[][] = []
    const waiters: Array<() => void> = []
    const children = Array.from({ length: count }, (_, g) => {
      events.push([])
      const share = Math.floor(conns / count) + (g < conns % count ? 1 : 0)
      const cfg: ScaleLoadConfig = {
        url: `ws://127.0.0.1:${server.port}/ws`,
        conns: share,
        offset: g * perGenerator,
        concurrency: Math.ceil(o.concurrency / count),
        stormConcurrency: Math.ceil(o.stormConcurrency / count),
        sourceAddrs: o.sourceAddrs,
        runId: `s${Date.now().toString(36)}`,
      }
      return generator('dist/bench/scale-load.js', cfg, (ev) => {
        events[g]!.push(ev as ScaleEvent)
        for (const w of waiters.splice(0)) w()
      })
    })
    /** Waits until every generator sent `name`; returns their events. */
    const all = async <E extends ScaleEvent['event']>(name: E): Promise<Array<Extract<ScaleEvent, { event: E }>>> => {
      for (;;) {
        const err = events.flat().find((e) => e.event === 'error')
        if (err !== undefined && err.event === 'error') throw new Error(err.message)
        const got = events.map((list) => list.find((e) => e.event === name))
        if (got.every((e) => e !== undefined)) return got as Array<Extract<ScaleEvent, { event: E }>>
        await new Promise<void>((resolve) => waiters.push(resolve))
      }
    }
    const goAll = (): void => {
      for (const c of children) c.stdin?.write('go\n')
    }
    const phase = (results: PhaseResult[]): PhaseResult => ({
      conns: results.reduce((n, r) => n + r.conns, 0),
      failed: results.reduce((n, r) => n + r.failed, 0),
      firstError: results.find((r) => r.firstError !== '')?.firstError ?? '',
      sec: Math.max(...results.map((r) => r.sec)),
    })

    rec.held = phase((await all('held')).map((e) => e.result))
    await sleep(1000)
    rec.rssHeldMB = rss(server)
    rec.kbPerConn = ((rec.rssHeldMB - rec.rssIdleMB!) * 1024) / Math.max(1, rec.held.conns)
    console.log(`  held ${rec.held.conns} in ${rec.held.sec.toFixed(1)} s, RSS ${mb(rec.rssHeldMB)} MB`)
    goAll()
    rec.dropSec = Math.max(...(await all('dropped')).map((e) => e.sec))
    // The storm starts once the server has let go of the old sockets: it reconnects everyone.
    for (let i = 0; i < 300 && (openFiles(server.pid) ?? 0) > baseFds + 16; i++) await sleep(100)
    const t0 = performance.now()
    goAll()
    rec.storm = phase((await all('stormed')).map((e) => e.result))
    rec.stormWallSec = (performance.now() - t0) / 1000
    rec.rssAfterStormMB = rss(server)
    console.log(`  storm: ${rec.storm.conns} re-bound in ${rec.stormWallSec.toFixed(1)} s, RSS ${mb(rec.rssAfterStormMB)} MB`)
    goAll()
    await Promise.all(children.map((c) => new Promise((resolve) => c.once('close', resolve))))
    return rec as HoldRecord
  } finally {
    await stopServer(server)
  }
}

// ---------------------------------------------------------------------------------------------
// volume

interface VolumeRecord {
  target: number
  msgBytes: number
  samples: Array<{ sec: number; acked: number; bytes: number; rssMB: number }>
  result?: TrafficResult
  /** the database file and its write-ahead log at the end */
  dbMB: number
  walMB: number
  error?: string
}

async function volume(): Promise<VolumeRecord | string> {
  const server = await startServer(duet('duet-sqlite-volume'))
  if (typeof server === 'string') return server
  const target = o.volumeMB * 1e6
  const rec: VolumeRecord = { target, msgBytes: o.volumeMsgBytes, samples: [], dbMB: NaN, walMB: NaN }
  try {
    await sleep(500)
    rec.samples.push({ sec: 0, acked: 0, bytes: 0, rssMB: rss(server) })
    const cfg: LoadConfig = {
      protocol: 'ws',
      scenario: 'closed',
      url: `ws://127.0.0.1:${server.port}/ws`,
      pairs: o.volumePairs,
      window: o.volumeWindow,
      openRate: 0,
      maxInflight: 0,
      warmupSec: 0,
      durationSec: o.volumeMaxSec,
      idleConns: 0,
      connectConcurrency: 100,
      msgBytes: o.volumeMsgBytes,
      sourceAddrs: o.sourceAddrs,
      deflate: false,
      runId: `v${Date.now().toString(36)}`,
      volumeBytes: target,
    }
    const child = generator('dist/bench/load.js', cfg, (ev) => {
      if (ev.event === 'progress') {
        rec.samples.push({ sec: ev.sec, acked: ev.acked, bytes: ev.bytes, rssMB: rss(server) })
        if (rec.samples.length % 10 === 0) console.log(`  ${(ev.bytes / 1e9).toFixed(2)} GB, RSS ${mb(rss(server))} MB`)
      } else if (ev.event === 'result' && ev.result.scenario !== 'idle') rec.result = ev.result
      else if (ev.event === 'error') rec.error = ev.message
    })
    await new Promise((resolve) => child.once('close', resolve))
    rec.dbMB = fileMB(join(server.dir, 'bench.db'))
    rec.walMB = fileMB(join(server.dir, 'bench.db-wal'))
    return rec
  } finally {
    await stopServer(server)
  }
}

function fileMB(path: string): number {
  try {
    return statSync(path).size / 1e6
  } catch {
    return 0
  }
}

// ---------------------------------------------------------------------------------------------
// report

function holdTable(r: HoldRecord): string {
  const head = '| conns | bind s | binds/s | RSS before MB | RSS held MB | KB/conn | storm conns | storm s | storm binds/s | RSS after MB | failed |'
  const row = [
    r.held.conns,
    r.held.sec.toFixed(1),
    Math.round(r.held.conns / r.held.sec),
    mb(r.rssIdleMB),
    mb(r.rssHeldMB),
    r.kbPerConn.toFixed(1),
    r.storm.conns,
    r.stormWallSec.toFixed(1),
    Math.round(r.storm.conns / r.stormWallSec),
    mb(r.rssAfterStormMB),
    r.held.failed + r.storm.failed,
  ]
  const lines = ['## hold: bound idle connections, then a reconnect storm (duet, SQLite store)', '', head, `|${'---:|'.repeat(row.length)}`, `| ${row.join(' | ')} |`]
  if (r.limitedBy !== undefined) lines.push(`- ${r.conns} of the ${r.requested} asked for: ${r.limitedBy}`)
  if (r.held.firstError !== '' || r.storm.firstError !== '') lines.push(`- first failure: ${r.held.firstError || r.storm.firstError}`)
  return lines.join('\n')
}

function volumeTable(r: VolumeRecord): string {
  // about ten rows: every tenth of the run, and the last sample
  const step = Math.max(1, Math.floor(r.samples.length / 10))
  const picked = r.samples.filter((_, i) => i % step === 0 || i === r.samples.length - 1)
  const rows = picked.map((s) => `| ${s.sec.toFixed(0)} | ${s.acked} | ${(s.bytes / 1e9).toFixed(2)} | ${mb(s.rssMB)} |`)
  const after = r.samples.slice(1).map((s) => s.rssMB)
  const lines = [
    `## volume: ${(r.target / 1e9).toFixed(2)} GB of ${r.msgBytes}-byte messages through the SQLite store`,
    '',
    '| s | messages acked | GB | server RSS MB |',
    '|---:|---:|---:|---:|',
    ...rows,
    `- RSS over the run: ${mb(Math.min(...after))}–${mb(Math.max(...after))} MB; database ${r.dbMB.toFixed(0)} MB + WAL ${r.walMB.toFixed(0)} MB` +
      (r.result ? `; ${Math.round(r.result.ackedPerSec)} msg/s, p99 ${r.result.latency.p99Ms} ms, errors ${r.result.errors}` : ''),
  ]
  if (r.error !== undefined) lines.push(`- error: ${r.error}`)
  return lines.join('\n')
}

async function main(): Promise<void> {
  const startedAt = new Date()
  console.log(`duet scale bench: ${scenarios.join(', ')}; pinning: ${canPin ? 'server and load generators on separate cores' : 'none'}`)
  const out: Record<string, unknown> = { startedAt, options: o }
  const texts: string[] = []
  if (scenarios.includes('hold')) {
    const r = await hold()
    out.hold = r
    texts.push(typeof r === 'string' ? `hold: failed: ${r}` : holdTable(r))
  }
  if (scenarios.includes('volume')) {
    const r = await volume()
    out.volume = r
    texts.push(typeof r === 'string' ? `volume: failed: ${r}` : volumeTable(r))
  }
  console.log(`\n${texts.join('\n\n')}\n\nduet ran with RATE_LIMIT=0 and the connection caps raised (a benchmark is the flood they stop).`)
  const dir = join(ROOT, 'bench/results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `scale-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ ...out, finishedAt: new Date(), tables: texts }, null, 2) + '\n')
  copyFileSync(file, join(dir, 'scale-latest.json'))
  console.log(`results: ${file.slice(ROOT.length)}`)
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
