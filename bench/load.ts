// Load generator. Started by run.ts as `node dist/bench/load.js '<LoadConfig JSON>'` (pinned to its
// own core); a partial JSON is completed with defaults, so it can also be run by hand, e.g.
//   node dist/bench/load.js '{"protocol":"ws","url":"ws://127.0.0.1:3100/ws","scenario":"closed"}'
// Writes LoadEvent lines (JSON) on stdout; events with `sync: true` wait for one line on stdin
// (skipped when stdin is a TTY or already closed).
//
// Scenarios:
//   closed: P pairs (a_i <-> b_i), every client keeps `window` un-acked sends to its partner
//           (closed loop); warm-up, then a fixed measured window.
//   open:   the same clients, sends scheduled at a fixed total rate (round robin), latency
//           measured both from the actual send and from the scheduled time.
//   idle:   N connections bind and stay idle; binds/s; the driver reads the server's RSS.
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client'
import hdr from 'hdr-histogram-js'
import type { IdleResult, LatencySummary, LoadConfig, LoadEvent, TrafficResult } from './types.js'

const defaultLoadConfig: LoadConfig = {
  protocol: 'ws',
  scenario: 'closed',
  url: 'ws://127.0.0.1:3100/ws',
  pairs: 50,
  window: 10,
  openRate: 10000,
  maxInflight: 100000,
  warmupSec: 2,
  durationSec: 10,
  idleConns: 5000,
  connectConcurrency: 100,
  msgBytes: 64,
  sourceAddrs: 9,
  deflate: false,
  runId: 'r',
}

const CONNECT_TIMEOUT_MS = 15000
const DRAIN_TIMEOUT_MS = 5000
const SYNC_TIMEOUT_MS = 120000

// ---------------------------------------------------------------------------------------------
// stats

function newHistogram(): hdr.Histogram {
  // microseconds, 1 us .. 60 s, 3 significant digits
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000
  return {
    count: h.totalCount,
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    meanMs: h.totalCount === 0 ? 0 : ms(h.mean),
  }
}

function toMicros(ms: number): number {
  const us = Math.round(ms * 1000)
  return us < 1 ? 1 : us > 60_000_000 ? 60_000_000 : us
}

class Stats {
  measuring = false
  acked = 0
  delivered = 0
  errors = 0
  skipped = 0
  inflight = 0
  readonly errorCodes: Record<string, number> = {}
  latency = newHistogram()
  scheduled = newHistogram()

  /** a send completed (ack or error reply); `scheduledAt` < 0 when not scheduled (closed loop) */
  complete(sentAt: number, scheduledAt: number, ok: boolean): void {
    this.inflight--
    if (!this.measuring) return
    if (!ok) return
    const now = performance.now()
    this.acked++
    this.latency.recordValue(toMicros(now - sentAt))
    if (scheduledAt >= 0) this.scheduled.recordValue(toMicros(now - scheduledAt))
  }

  deliver(): void {
    if (this.measuring) this.delivered++
  }

  error(code: string): void {
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1
    if (this.measuring) this.errors++
  }

  reset(): void {
    this.acked = 0
    this.delivered = 0
    this.errors = 0
    this.skipped = 0
    this.latency.reset()
    this.scheduled.reset()
  }
}

// ---------------------------------------------------------------------------------------------
// clients

interface Client {
  readonly uid: string
  /** un-acked sends on this connection */
  pending(): number
  /** sends one chat message to the partner */
  send(scheduledAt: number): void
  close(): void
}

type AckListener = (c: Client) => void

interface ServerFrame {
  type?: unknown
  error?: unknown
  code?: unknown
  msg?: unknown
  ref?: unknown
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function localAddress(cfg: LoadConfig, i: number): string {
  const n = Math.max(1, Math.min(254, cfg.sourceAddrs))
  return `127.0.0.${1 + (i % n)}`
}

const REF_KEY = '"ref":"'

/** Raw WebSocket client speaking PROTOCOL.md (used for duet and the ws baseline). */
class WsClient implements Client {
  private readonly ws: WebSocket
  private readonly prefix: string
  private readonly sent = new Map<string, number>()
  private readonly sched = new Map<string, number>()
  private nextRef = 0

  private constructor(
    readonly uid: string,
    touid: string,
    msg: string,
    ws: WebSocket,
    private readonly stats: Stats,
    private readonly onAck: AckListener,
  ) {
    this.ws = ws
    // client frames are built from a template: the load generator must stay cheap
    this.prefix = `{"type":"send","uid":${JSON.stringify(uid)},"touid":${JSON.stringify(touid)},"msg":${JSON.stringify(msg)},"ref":"`
  }

  static connect(cfg: LoadConfig, i: number, uid: string, touid: string, msg: string, stats: Stats, onAck: AckListener): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(cfg.url, {
        localAddress: localAddress(cfg, i),
        perMessageDeflate: cfg.deflate,
        skipUTF8Validation: true,
        handshakeTimeout: CONNECT_TIMEOUT_MS,
      })
      let settled = false
      const fail = (err: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        ws.terminate()
        reject(err)
      }
      const timer = setTimeout(() => fail(new Error(`${uid}: no bind reply within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
      ws.on('error', (err) => fail(new Error(`${uid}: ${err.message}`)))
      ws.on('close', (code, reason) => {
        if (!settled) fail(new Error(`${uid}: closed before bind (${code} ${reason.toString()})`))
        else stats.error(`close-${code}`)
      })
      ws.once('open', () => {
        ws.send(JSON.stringify({ type: 'bind', uid, ref: 'bind' }))
      })
      const onFirst = (data: WebSocket.RawData): void => {
        let f: unknown
        try {
          f = JSON.parse(String(data))
        } catch {
          fail(new Error(`${uid}: bind reply is not JSON: ${String(data).slice(0, 200)}`))
          return
        }
        if (!isObject(f)) return fail(new Error(`${uid}: bind reply is not an object`))
        if (f.error === true || f.code !== 201) {
          fail(new Error(`${uid}: bind refused: ${JSON.stringify(f).slice(0, 300)}`))
          return
        }
        settled = true
        clearTimeout(timer)
        ws.off('message', onFirst)
        const client = new WsClient(uid, touid, msg, ws, stats, onAck)
        ws.on('message', (d: WebSocket.RawData) => client.onText(String(d)))
        resolve(client)
      }
      ws.on('message', onFirst)
    })
  }

  pending(): number {
    return this.sent.size
  }

  send(scheduledAt: number): void {
    const ref = String(this.nextRef++)
    this.stats.inflight++
    this.sent.set(ref, performance.now())
    if (scheduledAt >= 0) this.sched.set(ref, scheduledAt)
    this.ws.send(this.prefix + ref + '"}')
  }

  private finish(ref: string, ok: boolean): boolean {
    const t = this.sent.get(ref)
    if (t === undefined) return false
    this.sent.delete(ref)
    let s = -1
    if (this.sched.size > 0) {
      s = this.sched.get(ref) ?? -1
      this.sched.delete(ref)
    }
    this.stats.complete(t, s, ok)
    this.onAck(this)
    return true
  }

  onText(s: string): void {
    // fast paths for compact JSON (JSON.stringify / fast-json-stringify); anything else is parsed
    if (s.includes('"code":204')) {
      const i = s.indexOf(REF_KEY)
      if (i >= 0) {
        const j = s.indexOf('"', i + REF_KEY.length)
        if (j > 0 && this.finish(s.slice(i + REF_KEY.length, j), true)) return
      }
    } else if (s.includes('"code":200')) {
      this.stats.deliver()
      return
    }
    let f: unknown
    try {
      f = JSON.parse(s)
    } catch {
      this.stats.error('not-json')
      return
    }
    if (!isObject(f)) {
      this.stats.error('not-object')
      return
    }
    const frame = f as ServerFrame
    if (frame.error === true) {
      this.stats.error(String(frame.code))
      if (typeof frame.ref === 'string') this.finish(frame.ref, false)
    } else if (frame.code === 204 && typeof frame.ref === 'string') {
      if (!this.finish(frame.ref, true)) this.stats.error('unknown-ref')
    } else if (frame.code === 200) {
      this.stats.deliver()
    }
  }

  close(): void {
    this.ws.terminate()
  }
}

interface SioAck {
  error?: unknown
  code?: unknown
}

/** Socket.IO client: events bind/send with ack callbacks, 'message' for incoming messages. */
class SioClient implements Client {
  private inflight = 0
  private nextRef = 0
  private readonly payload: { uid: string; touid: string; msg: string; ref: string }

  private constructor(
    readonly uid: string,
    touid: string,
    msg: string,
    private readonly socket: Socket,
    private readonly stats: Stats,
    private readonly onAck: AckListener,
  ) {
    this.payload = { uid, touid, msg, ref: '' }
  }

  static connect(cfg: LoadConfig, i: number, uid: string, touid: string, msg: string, stats: Stats, onAck: AckListener): Promise<SioClient> {
    return new Promise((resolve, reject) => {
      // localAddress and perMessageDeflate: false are passed through to `ws` by engine.io-client
      // but missing from its types
      type Opts = Omit<Partial<ManagerOptions & SocketOptions>, 'perMessageDeflate'> & {
        localAddress: string
        perMessageDeflate: false | { threshold: number }
      }
      const opts: Opts = {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        timeout: CONNECT_TIMEOUT_MS,
        localAddress: localAddress(cfg, i),
        perMessageDeflate: cfg.deflate ? { threshold: 0 } : false,
      }
      const socket = io(cfg.url, opts as Partial<ManagerOptions & SocketOptions>)
      let settled = false
      const fail = (err: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        socket.close()
        reject(err)
      }
      const timer = setTimeout(() => fail(new Error(`${uid}: no bind reply within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
      socket.on('connect_error', (err: Error) => fail(new Error(`${uid}: ${err.message}`)))
      socket.on('disconnect', (reason: string) => {
        if (!settled) fail(new Error(`${uid}: disconnected before bind (${reason})`))
        else if (reason !== 'io client disconnect') stats.error(`disconnect-${reason}`)
      })
      socket.on('message', () => stats.deliver())
      socket.once('connect', () => {
        socket.emit('bind', { uid, ref: 'bind' }, (reply: SioAck) => {
          if (reply?.error === true || reply?.code !== 201) {
            fail(new Error(`${uid}: bind refused: ${JSON.stringify(reply).slice(0, 300)}`))
            return
          }
          settled = true
          clearTimeout(timer)
          resolve(new SioClient(uid, touid, msg, socket, stats, onAck))
        })
      })
    })
  }

  pending(): number {
    return this.inflight
  }

  send(scheduledAt: number): void {
    this.payload.ref = String(this.nextRef++)
    this.inflight++
    this.stats.inflight++
    const sentAt = performance.now()
    this.socket.emit('send', this.payload, (reply: SioAck) => {
      this.inflight--
      const ok = reply?.error !== true && reply?.code === 204
      if (!ok) this.stats.error(String(reply?.code))
      this.stats.complete(sentAt, scheduledAt, ok)
      this.onAck(this)
    })
  }

  close(): void {
    this.socket.close()
  }
}

// ---------------------------------------------------------------------------------------------
// plumbing

function emit(ev: LoadEvent): void {
  process.stdout.write(JSON.stringify(ev) + '\n')
}

const stdinLines: string[] = []
const stdinWaiters: Array<(line: string | undefined) => void> = []
let stdinClosed = false
if (!process.stdin.isTTY) {
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const w = stdinWaiters.shift()
    if (w !== undefined) w(line)
    else stdinLines.push(line)
  })
  rl.on('close', () => {
    stdinClosed = true
    for (const w of stdinWaiters.splice(0)) w(undefined)
  })
}

/** emits a sync event and waits for the driver's go-ahead (one stdin line) */
async function sync(ev: LoadEvent): Promise<void> {
  emit(ev)
  if (process.stdin.isTTY) return
  if (stdinLines.length > 0) {
    stdinLines.shift()
    return
  }
  if (stdinClosed) return // run by hand with stdin from /dev/null: nobody to wait for
  const line = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), SYNC_TIMEOUT_MS)
    stdinWaiters.push((l) => {
      clearTimeout(timer)
      resolve(l)
    })
  })
  if (line === undefined) throw new Error(`no reply from the driver to ${ev.event}`)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** runs fn(0..n-1) with at most `concurrency` in flight */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++
      await fn(i)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker))
}

function connectOne(cfg: LoadConfig, i: number, uid: string, touid: string, msg: string, stats: Stats, onAck: AckListener): Promise<Client> {
  return cfg.protocol === 'sio'
    ? SioClient.connect(cfg, i, uid, touid, msg, stats, onAck)
    : WsClient.connect(cfg, i, uid, touid, msg, stats, onAck)
}

function cpuSec(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since)
  return (d.user + d.system) / 1e6
}

// ---------------------------------------------------------------------------------------------
// scenarios

async function connectPairs(cfg: LoadConfig, stats: Stats, onAck: AckListener): Promise<{ clients: Client[]; sec: number }> {
  const msg = 'x'.repeat(cfg.msgBytes)
  const n = cfg.pairs * 2
  const clients = new Array<Client>(n)
  const t0 = performance.now()
  await pool(n, cfg.connectConcurrency, async (i) => {
    const pair = i >> 1
    const a = `${cfg.runId}_a_${pair}`
    const b = `${cfg.runId}_b_${pair}`
    const [uid, touid] = i % 2 === 0 ? [a, b] : [b, a]
    clients[i] = await connectOne(cfg, i, uid, touid, msg, stats, onAck)
  })
  const sec = (performance.now() - t0) / 1000
  emit({ event: 'bound', conns: n, sec })
  return { clients, sec }
}

async function drain(stats: Stats): Promise<void> {
  const until = performance.now() + DRAIN_TIMEOUT_MS
  while (stats.inflight > 0 && performance.now() < until) await sleep(20)
}

async function traffic(cfg: LoadConfig): Promise<TrafficResult> {
  const stats = new Stats()
  let running = false
  const onAck: AckListener = cfg.scenario === 'closed' ? (c) => { if (running) c.send(-1) } : () => undefined
  const { clients, sec: connectSec } = await connectPairs(cfg, stats, onAck)

  running = true
  let ticker: NodeJS.Timeout | undefined
  if (cfg.scenario === 'closed') {
    for (const c of clients) for (let w = 0; w < cfg.window; w++) c.send(-1)
  } else {
    // open loop: sends due by the schedule go out every ~1 ms tick, round robin over the clients
    const start = performance.now()
    const perMs = cfg.openRate / 1000
    const maxPerTick = Math.max(1, Math.ceil(cfg.openRate / 10)) // never more than 100 ms of backlog at once
    let scheduled = 0
    let rr = 0
    const tick = (): void => {
      if (!running) return
      const due = Math.floor((performance.now() - start) * perMs)
      let n = Math.min(due - scheduled, maxPerTick)
      while (n-- > 0) {
        const at = start + scheduled / perMs
        scheduled++
        if (stats.inflight >= cfg.maxInflight) {
          if (stats.measuring) stats.skipped++
          continue
        }
        clients[rr].send(at)
        rr = rr + 1 === clients.length ? 0 : rr + 1
      }
      ticker = setTimeout(tick, 1)
    }
    tick()
  }

  const volume = cfg.scenario === 'closed' && (cfg.volumeBytes ?? 0) > 0
  if (!volume) await sleep(cfg.warmupSec * 1000)
  stats.reset()
  stats.measuring = true
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  emit({ event: 'measure-start' })
  if (volume) await untilVolume(cfg, stats, t0)
  else await sleep(cfg.durationSec * 1000)
  stats.measuring = false
  const wallSec = (performance.now() - t0) / 1000
  const loadCpu = cpuSec(cpu0) / wallSec
  emit({ event: 'measure-end' })

  running = false
  if (ticker !== undefined) clearTimeout(ticker)
  await drain(stats)
  const unacked = stats.inflight
  for (const c of clients) c.close()

  const result: TrafficResult = {
    scenario: cfg.scenario === 'open' ? 'open' : 'closed',
    wallSec,
    acked: stats.acked,
    delivered: stats.delivered,
    errors: stats.errors,
    errorCodes: stats.errorCodes,
    ackedPerSec: stats.acked / wallSec,
    latency: summarize(stats.latency),
    unacked,
    loadCpu,
    connectSec,
  }
  if (cfg.scenario === 'open') {
    result.scheduledLatency = summarize(stats.scheduled)
    result.offeredRate = cfg.openRate
    result.skipped = stats.skipped
  }
  return result
}

/** Until volumeBytes of messages were acked (or durationSec passed), a progress event a second. */
async function untilVolume(cfg: LoadConfig, stats: Stats, t0: number): Promise<void> {
  for (;;) {
    await sleep(1000)
    const sec = (performance.now() - t0) / 1000
    const bytes = stats.acked * cfg.msgBytes
    emit({ event: 'progress', acked: stats.acked, bytes, sec })
    if (bytes >= (cfg.volumeBytes ?? 0) || sec >= cfg.durationSec) return
  }
}

async function idle(cfg: LoadConfig): Promise<IdleResult> {
  const stats = new Stats()
  const n = cfg.idleConns
  const warm = Math.min(100, Math.floor(n / 10))
  const clients: Client[] = []
  let failed = 0
  let firstError = ''
  const open = async (i: number): Promise<void> => {
    const uid = `${cfg.runId}_idle_${i}`
    try {
      clients.push(await connectOne(cfg, i, uid, uid, '', stats, () => undefined))
    } catch (err) {
      failed++
      if (firstError === '') firstError = (err as Error).message
    }
  }
  await pool(warm, cfg.connectConcurrency, open)
  if (warm > 0 && failed === warm) throw new Error(`no connection could bind: ${firstError}`)
  await sleep(500)
  await sync({ event: 'idle-warm', sync: true, conns: clients.length })

  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await pool(n - warm, cfg.connectConcurrency, (i) => open(warm + i))
  const bindSec = (performance.now() - t0) / 1000
  const loadCpu = cpuSec(cpu0) / bindSec
  emit({ event: 'idle-bound', conns: clients.length })
  if (failed > 0) process.stderr.write(`load: ${failed} of ${n} idle connections failed; first: ${firstError}\n`)
  await sleep(1000) // let the server settle before its RSS is read
  await sync({ event: 'idle-ready', sync: true, conns: clients.length })
  for (const c of clients) c.close()
  return { scenario: 'idle', conns: clients.length, warmConns: warm, bindsPerSec: (n - warm - failed) / bindSec, bindSec, failed, loadCpu }
}

async function main(): Promise<void> {
  const arg = process.argv[2]
  const cfg: LoadConfig = { ...defaultLoadConfig, ...(arg !== undefined ? (JSON.parse(arg) as Partial<LoadConfig>) : {}) }
  // the whole run is bounded: the driver also kills us, this is for runs by hand
  const budgetMs = (cfg.warmupSec + cfg.durationSec) * 1000 + CONNECT_TIMEOUT_MS * 4 + cfg.idleConns * 20 + SYNC_TIMEOUT_MS * 2
  setTimeout(() => {
    emit({ event: 'error', message: `load generator exceeded its time budget (${budgetMs} ms)` })
    process.exit(2)
  }, budgetMs).unref()

  const result = cfg.scenario === 'idle' ? await idle(cfg) : await traffic(cfg)
  emit({ event: 'result', result })
}

main().then(
  () => process.stdout.write('', () => process.exit(0)),
  (err: unknown) => {
    emit({ event: 'error', message: err instanceof Error ? err.message : String(err) })
    process.stdout.write('', () => process.exit(1))
  },
)
