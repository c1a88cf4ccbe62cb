// Load generator for the cluster bench. Started by cluster.ts as
// `node dist/bench/cluster-load.js '<ClusterLoadConfig JSON>'` (pinned to its own core).
//
// Why not bench/load.ts: it points every client at one URL, and it measures send→ack only.
// Here the two users of a pair may sit on different nodes, and every message is also timed
// at the peer (send→delivery), which is the figure a cross-node hop changes; the ack only
// waits for the store.
//
// Scenarios (as in load.ts):
//   closed: P pairs (a_i <-> b_i), each client keeps `window` un-acked sends to its partner.
//   open:   sends at a fixed total rate, round robin over the clients; ack latency both from the
//           actual send and from the scheduled time (no coordinated omission).
// Writes ClusterLoadEvent lines (JSON) on stdout; no events wait for the driver.
import { WebSocket } from 'ws'
import hdr from 'hdr-histogram-js'
import type { LatencySummary } from './types.js'
import type { ClusterLoadConfig, ClusterLoadEvent, ClusterTrafficResult } from './cluster-types.js'

const defaults: ClusterLoadConfig = {
  scenario: 'closed',
  urls: ['ws://127.0.0.1:3000/ws'],
  placement: 'same',
  pairs: 50,
  window: 10,
  openRate: 2000,
  maxInflight: 20000,
  warmupSec: 2,
  durationSec: 5,
  connectConcurrency: 50,
  msgBytes: 64,
  sourceAddrs: 9,
  runId: 'c',
}

const CONNECT_TIMEOUT_MS = 15000
const DRAIN_TIMEOUT_MS = 5000

// ---------------------------------------------------------------------------------------------
// stats

function newHistogram(): hdr.Histogram {
  // microseconds, 1 us .. 60 s, 3 significant digits (as load.ts)
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

function toMicros(ms: number): number {
  const us = Math.round(ms * 1000)
  return us < 1 ? 1 : us > 60_000_000 ? 60_000_000 : us
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

class Stats {
  measuring = false
  acked = 0
  delivered = 0
  errors = 0
  skipped = 0
  /** sends without an ack or error reply yet */
  inflight = 0
  /** pushes that matched nothing awaiting delivery (whole run) */
  unexpected = 0
  readonly errorCodes: Record<string, number> = {}
  readonly ack = newHistogram()
  readonly scheduled = newHistogram()
  readonly delivery = newHistogram()
  /**
   * Message id -> send time, until the peer gets it. One map for all clients: the message id
   * (carried in `msg`) names the sender, so the receiving client needs no link to it.
   */
  readonly awaitingDelivery = new Map<string, number>()

  acknowledged(sentAt: number, scheduledAt: number): void {
    this.inflight--
    if (!this.measuring) return
    const now = performance.now()
    this.acked++
    this.ack.recordValue(toMicros(now - sentAt))
    if (scheduledAt >= 0) this.scheduled.recordValue(toMicros(now - scheduledAt))
  }

  refused(code: string, id: string | undefined): void {
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1
    if (this.measuring) this.errors++
    if (id === undefined) return
    // Not stored, so never pushed: it must not count as undelivered.
    this.inflight--
    this.awaitingDelivery.delete(id)
  }

  arrived(id: string): void {
    const sentAt = this.awaitingDelivery.get(id)
    if (sentAt === undefined) {
      this.unexpected++
      return
    }
    this.awaitingDelivery.delete(id)
    if (!this.measuring) return
    this.delivered++
    this.delivery.recordValue(toMicros(performance.now() - sentAt))
  }

  reset(): void {
    this.acked = 0
    this.delivered = 0
    this.errors = 0
    this.skipped = 0
    this.ack.reset()
    this.scheduled.reset()
    this.delivery.reset()
  }
}

// ---------------------------------------------------------------------------------------------
// client

type AckListener = (c: Client) => void

const REF_KEY = '"ref":"'
const MSG_KEY = '"msg":"'

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Raw WebSocket client speaking PROTOCOL.md; one per user. */
class Client {
  /** ref -> send time, until the ack */
  private readonly sent = new Map<string, number>()
  private readonly sched = new Map<string, number>()
  private readonly prefix: string
  private readonly padding: string
  private nextRef = 0

  private constructor(
    private readonly index: number,
    touid: string,
    private readonly ws: WebSocket,
    private readonly stats: Stats,
    private readonly onAck: AckListener,
    msgBytes: number,
  ) {
    // Frames are built from a template: the generator must stay cheap next to the servers.
    this.prefix = `{"type":"send","touid":${JSON.stringify(touid)},"msg":"`
    this.padding = 'x'.repeat(msgBytes)
  }

  static connect(cfg: ClusterLoadConfig, index: number, url: string, uid: string, touid: string, stats: Stats, onAck: AckListener): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        localAddress: `127.0.0.${1 + (index % Math.max(1, Math.min(254, cfg.sourceAddrs)))}`,
        perMessageDeflate: false,
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
      ws.on('error', (err) => fail(new Error(`${uid}@${url}: ${err.message}`)))
      ws.on('close', (code, reason) => {
        if (!settled) fail(new Error(`${uid}: closed before bind (${code} ${reason.toString()})`))
        else stats.refused(`close-${code}`, undefined)
      })
      ws.once('open', () => ws.send(JSON.stringify({ type: 'bind', uid, ref: 'bind' })))
      const onFirst = (data: WebSocket.RawData): void => {
        let f: unknown
        try {
          f = JSON.parse(String(data))
        } catch {
          fail(new Error(`${uid}: bind reply is not JSON`))
          return
        }
        if (!isObject(f) || f.error === true || f.code !== 201) {
          fail(new Error(`${uid}: bind refused: ${JSON.stringify(f).slice(0, 300)}`))
          return
        }
        settled = true
        clearTimeout(timer)
        ws.off('message', onFirst)
        const client = new Client(index, touid, ws, stats, onAck, cfg.msgBytes)
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
    // The id travels in `msg` and comes back in the peer's push: "<client>.<ref>", padded
    // to msgBytes with 'x' (never a digit or '.', so the receiver knows where it ends).
    const id = `${this.index}.${ref}`
    const body = id.length >= this.padding.length ? id : id + this.padding.slice(id.length)
    const now = performance.now()
    this.stats.inflight++
    this.sent.set(ref, now)
    if (scheduledAt >= 0) this.sched.set(ref, scheduledAt)
    this.stats.awaitingDelivery.set(id, now)
    this.ws.send(`${this.prefix}${body}","ref":"${ref}"}`)
  }

  /** Ack or error reply for one of our refs; false when the ref is not ours or already done. */
  private finish(ref: string, code: string | null): boolean {
    const t = this.sent.get(ref)
    if (t === undefined) return false
    this.sent.delete(ref)
    let s = -1
    if (this.sched.size > 0) {
      s = this.sched.get(ref) ?? -1
      this.sched.delete(ref)
    }
    if (code === null) this.stats.acknowledged(t, s)
    else this.stats.refused(code, `${this.index}.${ref}`)
    this.onAck(this)
    return true
  }

  onText(s: string): void {
    // Fast paths for the server's compact JSON; anything else is parsed.
    if (s.includes('"code":204')) {
      const i = s.indexOf(REF_KEY)
      if (i >= 0) {
        const j = s.indexOf('"', i + REF_KEY.length)
        if (j > 0 && this.finish(s.slice(i + REF_KEY.length, j), null)) return
      }
    } else if (s.includes('"code":200')) {
      const i = s.indexOf(MSG_KEY)
      if (i >= 0) {
        const start = i + MSG_KEY.length
        let end = start
        for (let c = s.charCodeAt(end); (c >= 48 && c <= 57) || c === 46; c = s.charCodeAt(++end));
        this.stats.arrived(s.slice(start, end))
        return
      }
    }
    let f: unknown
    try {
      f = JSON.parse(s)
    } catch {
      this.stats.refused('not-json', undefined)
      return
    }
    if (!isObject(f)) {
      this.stats.refused('not-object', undefined)
      return
    }
    if (f.error === true) {
      const code = String(f.code)
      if (typeof f.ref !== 'string' || !this.finish(f.ref, code)) this.stats.refused(code, undefined)
    } else if (f.code === 204 && typeof f.ref === 'string') {
      if (!this.finish(f.ref, null)) this.stats.refused('unknown-ref', undefined)
    } else if (f.code === 200 && typeof f.msg === 'string') {
      this.stats.arrived(/^[0-9.]*/.exec(f.msg)?.[0] ?? '')
    }
  }

  close(): void {
    this.ws.terminate()
  }
}

// ---------------------------------------------------------------------------------------------
// run

function emit(ev: ClusterLoadEvent): void {
  process.stdout.write(JSON.stringify(ev) + '\n')
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** runs fn(0..n-1) with at most `concurrency` in flight */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker))
}

/** The node URL of pair `pair`'s user a (side 0) or b (side 1). */
function urlOf(cfg: ClusterLoadConfig, pair: number, side: 0 | 1): string {
  const n = cfg.urls.length
  if (cfg.placement === 'split') return cfg.urls[side % n]!
  return cfg.urls[pair % n]!
}

async function traffic(cfg: ClusterLoadConfig): Promise<ClusterTrafficResult> {
  const stats = new Stats()
  let running = false
  const onAck: AckListener = cfg.scenario === 'closed' ? (c) => { if (running) c.send(-1) } : () => undefined

  const n = cfg.pairs * 2
  const clients = new Array<Client>(n)
  const t0 = performance.now()
  await pool(n, cfg.connectConcurrency, async (i) => {
    const pair = i >> 1
    const side = (i & 1) as 0 | 1
    const a = `${cfg.runId}_a_${pair}`
    const b = `${cfg.runId}_b_${pair}`
    const [uid, touid] = side === 0 ? [a, b] : [b, a]
    clients[i] = await Client.connect(cfg, i, urlOf(cfg, pair, side), uid, touid, stats, onAck)
  })
  const connectSec = (performance.now() - t0) / 1000
  emit({ event: 'bound', conns: n, sec: connectSec })

  running = true
  let ticker: NodeJS.Timeout | undefined
  if (cfg.scenario === 'closed') {
    for (const c of clients) for (let w = 0; w < cfg.window; w++) c.send(-1)
  } else {
    const start = performance.now()
    const perMs = cfg.openRate / 1000
    const maxPerTick = Math.max(1, Math.ceil(cfg.openRate / 10)) // at most 100 ms of backlog at once
    let scheduled = 0
    let rr = 0
    const tick = (): void => {
      if (!running) return
      const due = Math.floor((performance.now() - start) * perMs)
      let k = Math.min(due - scheduled, maxPerTick)
      while (k-- > 0) {
        const at = start + scheduled / perMs
        scheduled++
        if (stats.inflight >= cfg.maxInflight) {
          if (stats.measuring) stats.skipped++
          continue
        }
        clients[rr]!.send(at)
        rr = rr + 1 === clients.length ? 0 : rr + 1
      }
      ticker = setTimeout(tick, 1)
    }
    tick()
  }

  await sleep(cfg.warmupSec * 1000)
  stats.reset()
  stats.measuring = true
  const cpu0 = process.cpuUsage()
  const w0 = performance.now()
  emit({ event: 'measure-start' })
  await sleep(cfg.durationSec * 1000)
  stats.measuring = false
  const wallSec = (performance.now() - w0) / 1000
  const used = process.cpuUsage(cpu0)
  emit({ event: 'measure-end' })

  // Stop sending, then give acks and pushes time to arrive, so that whatever is still
  // missing at the end is missing, not late.
  running = false
  if (ticker !== undefined) clearTimeout(ticker)
  const until = performance.now() + DRAIN_TIMEOUT_MS
  while ((stats.inflight > 0 || stats.awaitingDelivery.size > 0) && performance.now() < until) await sleep(20)
  for (const c of clients) c.close()

  const result: ClusterTrafficResult = {
    scenario: cfg.scenario,
    wallSec,
    acked: stats.acked,
    delivered: stats.delivered,
    errors: stats.errors,
    errorCodes: stats.errorCodes,
    ackedPerSec: stats.acked / wallSec,
    deliveredPerSec: stats.delivered / wallSec,
    latency: summarize(stats.ack),
    delivery: summarize(stats.delivery),
    unacked: stats.inflight,
    undelivered: stats.awaitingDelivery.size,
    unexpected: stats.unexpected,
    loadCpu: (used.user + used.system) / 1e6 / wallSec,
    connectSec,
  }
  if (cfg.scenario === 'open') {
    result.scheduledLatency = summarize(stats.scheduled)
    result.offeredRate = cfg.openRate
    result.skipped = stats.skipped
  }
  return result
}

async function main(): Promise<void> {
  const arg = process.argv[2]
  const cfg: ClusterLoadConfig = { ...defaults, ...(arg !== undefined ? (JSON.parse(arg) as Partial<ClusterLoadConfig>) : {}) }
  if (cfg.urls.length === 0) throw new Error('urls: at least one node URL')
  if (cfg.placement === 'split' && cfg.urls.length < 2) throw new Error('placement split needs two node URLs')
  // Bounded even when run by hand; the driver kills us too.
  const budgetMs = (cfg.warmupSec + cfg.durationSec) * 1000 + CONNECT_TIMEOUT_MS * 2 + DRAIN_TIMEOUT_MS * 2
  setTimeout(() => {
    emit({ event: 'error', message: `cluster load generator exceeded its time budget (${budgetMs} ms)` })
    process.exit(2)
  }, budgetMs).unref()
  emit({ event: 'result', result: await traffic(cfg) })
}

main().then(
  () => process.stdout.write('', () => process.exit(0)),
  (err: unknown) => {
    emit({ event: 'error', message: err instanceof Error ? err.message : String(err) })
    process.stdout.write('', () => process.exit(1))
  },
)
