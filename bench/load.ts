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
import type { WebSocket } from 'ws'
import type { IdleResult, LoadConfig, LoadEvent, TrafficResult } from './types.js'
import {
  AckedWsClient,
  bindWs,
  CONNECT_TIMEOUT_MS,
  cpuSec,
  isObject,
  openClient,
  pool,
  readConfig,
  refOf,
  runMain,
  runTraffic,
  sleep,
  socketOptions,
  timeBudget,
  TrafficStats,
  writeEvent,
  type AckListener,
  type TrafficClient,
} from './load-common.js'

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

const SYNC_TIMEOUT_MS = 120000

// ---------------------------------------------------------------------------------------------
// stats

class Stats extends TrafficStats {
  /** a send completed (ack or error reply) */
  complete(sentAt: number, scheduledAt: number, ok: boolean): void {
    if (ok) this.acknowledged(sentAt, scheduledAt)
    else this.inflight--
  }

  deliver(): void {
    if (this.measuring) this.delivered++
  }
}

// ---------------------------------------------------------------------------------------------
// clients

interface Client extends TrafficClient {
  readonly uid: string
  /** un-acked sends on this connection */
  pending(): number
  close(): void
}

interface ServerFrame {
  type?: unknown
  error?: unknown
  code?: unknown
  msg?: unknown
  ref?: unknown
}

/** Raw WebSocket client speaking PROTOCOL.md (used for duet and the ws baseline). */
class WsClient extends AckedWsClient<boolean> implements Client {
  private readonly prefix: string

  private constructor(
    readonly uid: string,
    touid: string,
    msg: string,
    ws: WebSocket,
    private readonly stats: Stats,
    onAck: AckListener,
  ) {
    super(ws, onAck)
    // client frames are built from a template: the load generator must stay cheap
    this.prefix = `{"type":"send","uid":${JSON.stringify(uid)},"touid":${JSON.stringify(touid)},"msg":${JSON.stringify(msg)},"ref":"`
  }

  static connect(cfg: LoadConfig, i: number, uid: string, touid: string, msg: string, stats: Stats, onAck: AckListener): Promise<WsClient> {
    return bindWs(cfg.url, uid, socketOptions(cfg, i), (code) => stats.error(`close-${code}`), (ws) => new WsClient(uid, touid, msg, ws, stats, onAck))
  }

  send(scheduledAt: number): void {
    const ref = this.newRef()
    this.stats.inflight++
    this.track(ref, performance.now(), scheduledAt)
    this.ws.send(this.prefix + ref + '"}')
  }

  protected settled(_ref: string, sentAt: number, scheduledAt: number, ok: boolean): void {
    this.stats.complete(sentAt, scheduledAt, ok)
  }

  onText(s: string): void {
    // fast paths for compact JSON (JSON.stringify / fast-json-stringify); anything else is parsed
    if (s.includes('"code":204')) {
      const ref = refOf(s)
      if (ref !== undefined && this.finish(ref, true)) return
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
}

/**
 * Socket.IO 4 client speaking its wire protocol (Engine.IO 4 over a raw WebSocket) directly:
 * socket.io-client cost the load generator more CPU per message than the server it measures,
 * so the Socket.IO runs measured the load generator. Events as socket.io-client sends them:
 * `42<id>["send",{...}]`, acked by `43<id>[{...}]`; the ack id is the message's ref. Engine.IO
 * pings ("2") get their pong ("3"), so idle connections stay open.
 */
class SioClient extends AckedWsClient<boolean> implements Client {
  private readonly payload: string

  private constructor(
    readonly uid: string,
    touid: string,
    msg: string,
    ws: WebSocket,
    private readonly stats: Stats,
    onAck: AckListener,
  ) {
    super(ws, onAck)
    this.payload = `["send",{"uid":${JSON.stringify(uid)},"touid":${JSON.stringify(touid)},"msg":${JSON.stringify(msg)},"ref":"`
  }

  static connect(cfg: LoadConfig, i: number, uid: string, touid: string, msg: string, stats: Stats, onAck: AckListener): Promise<SioClient> {
    const url = `${cfg.url.replace(/^http/, 'ws').replace(/\/$/, '')}/socket.io/?EIO=4&transport=websocket`
    return openClient<SioClient>(url, uid, socketOptions(cfg, i), (code) => stats.error(`close-${code}`), (ws, binding) => {
      let client: SioClient | undefined
      ws.on('message', (data: WebSocket.RawData) => {
        const s = String(data)
        if (client !== undefined) return client.onText(s)
        if (s.startsWith('0{')) ws.send('40') // Engine.IO open: connect to the main namespace
        else if (s.startsWith('40')) ws.send(`420["bind",{"uid":${JSON.stringify(uid)},"ref":"bind"}]`)
        else if (s === '2') ws.send('3')
        else if (s.startsWith('430[')) {
          if (!s.includes('"code":201')) return binding.fail(new Error(`${uid}: bind refused: ${s.slice(0, 300)}`))
          client = new SioClient(uid, touid, msg, ws, stats, onAck)
          binding.bound(client)
        } else binding.fail(new Error(`${uid}: unexpected Socket.IO packet before bind: ${s.slice(0, 200)}`))
      })
    })
  }

  send(scheduledAt: number): void {
    const ref = this.newRef()
    this.stats.inflight++
    this.track(ref, performance.now(), scheduledAt)
    this.ws.send(`42${ref}${this.payload}${ref}"}]`)
  }

  protected settled(_ref: string, sentAt: number, scheduledAt: number, ok: boolean): void {
    this.stats.complete(sentAt, scheduledAt, ok)
  }

  onText(s: string): void {
    if (s.startsWith('43')) {
      // an ack: 43<id>[{...}]
      const ok = s.includes('"code":204')
      if (!this.finish(s.slice(2, s.indexOf('[')), ok)) this.stats.error('unknown-ack')
      else if (!ok) this.stats.error(/"code":(\d+)/.exec(s)?.[1] ?? 'bad-ack')
    } else if (s.startsWith('42["message"')) this.stats.deliver()
    else if (s === '2') this.ws.send('3')
    else this.stats.error(`packet-${s.slice(0, 2)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// plumbing

const emit: (ev: LoadEvent) => void = writeEvent

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

function connectOne(cfg: LoadConfig, i: number, uid: string, touid: string, msg: string, stats: Stats, onAck: AckListener): Promise<Client> {
  return cfg.protocol === 'sio'
    ? SioClient.connect(cfg, i, uid, touid, msg, stats, onAck)
    : WsClient.connect(cfg, i, uid, touid, msg, stats, onAck)
}

// ---------------------------------------------------------------------------------------------
// scenarios

async function traffic(cfg: LoadConfig): Promise<TrafficResult> {
  const stats = new Stats(cfg.trace === true)
  const msg = 'x'.repeat(cfg.msgBytes)
  const volume = cfg.scenario === 'closed' && (cfg.volumeBytes ?? 0) > 0
  return runTraffic(cfg, stats, {
    connect: (i, uid, touid, onAck) => connectOne(cfg, i, uid, touid, msg, stats, onAck),
    ...(volume ? { warmup: false, window: (t0: number) => untilVolume(cfg, stats, t0) } : {}),
  })
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
  const cfg = readConfig(defaultLoadConfig)
  timeBudget(
    (cfg.warmupSec + cfg.durationSec) * 1000 + CONNECT_TIMEOUT_MS * 4 + cfg.idleConns * 20 + SYNC_TIMEOUT_MS * 2,
    'load generator',
  )
  const result = cfg.scenario === 'idle' ? await idle(cfg) : await traffic(cfg)
  emit({ event: 'result', result })
}

runMain(main)
