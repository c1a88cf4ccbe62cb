// What the two load generators, load.ts (run.ts's) and cluster-load.ts (cluster.ts's), share:
// the latency histograms, the connection set-up (a raw WebSocket from the client's source
// address, its handshake settled once; PROTOCOL.md's bind; acks matched by ref), the traffic run
// (pairs connected, closed or open send loop, warm-up, measured window, drain) and its result
// with the latency figures, and the process frame (config from argv, time budget, exit). One
// copy, so that both measure alike.
// Both run on one core beside the servers they measure, so the per-message path (send, ack
// matching) creates no closures or objects beyond what the frame itself needs.
import { WebSocket } from 'ws'
import hdr from 'hdr-histogram-js'
import type { LatencySummary, LoadConfig, LoadEvent, TrafficResult } from './types.js'
import type { ClusterLoadEvent } from './cluster-types.js'
import { TailRecorder } from './tail.js'

export const CONNECT_TIMEOUT_MS = 15000
export const DRAIN_TIMEOUT_MS = 5000

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// stats

export function newHistogram(): hdr.Histogram {
  // microseconds, 1 us .. 60 s, 3 significant digits
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

export function toMicros(ms: number): number {
  const us = Math.round(ms * 1000)
  return us < 1 ? 1 : us > 60_000_000 ? 60_000_000 : us
}

export function summarize(h: hdr.Histogram): LatencySummary {
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

/** Counters of one traffic run; only the measured window counts (`measuring`). */
export class TrafficStats {
  measuring = false
  acked = 0
  delivered = 0
  errors = 0
  skipped = 0
  /** sends without an ack or error reply yet */
  inflight = 0
  readonly errorCodes: Record<string, number> = {}
  /** send -> ack */
  readonly latency = newHistogram()
  /** open loop: scheduled send time -> ack */
  readonly scheduled = newHistogram()
  /** with `trace`: every ack of the window, for its slowest 1 % */
  readonly tail: TailRecorder | undefined

  constructor(trace = false) {
    this.tail = trace ? new TailRecorder() : undefined
  }

  /** an ack (204); `scheduledAt` < 0 when not scheduled (closed loop) */
  acknowledged(sentAt: number, scheduledAt: number): void {
    this.inflight--
    if (!this.measuring) return
    const now = performance.now()
    this.acked++
    this.latency.recordValue(toMicros(now - sentAt))
    this.tail?.record(sentAt, now - sentAt)
    if (scheduledAt >= 0) this.scheduled.recordValue(toMicros(now - scheduledAt))
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

export interface Sender {
  /** sends one chat message to the partner; `scheduledAt` < 0 when not scheduled */
  send(scheduledAt: number): void
}

export type AckListener = (c: Sender) => void

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Client i's source address, 127.0.0.1 .. 127.0.0.<n>: one address has too few ports. */
export function localAddress(sourceAddrs: number, i: number): string {
  return `127.0.0.${1 + (i % Math.max(1, Math.min(254, sourceAddrs)))}`
}

/** One connection's bind: settled once, by the reply or by a failure, or failed after CONNECT_TIMEOUT_MS. */
export class Binding<C> {
  settled = false
  private readonly timer: NodeJS.Timeout

  /** `abort` closes the connection when the bind fails */
  constructor(
    uid: string,
    private readonly abort: () => void,
    private readonly resolve: (client: C) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.timer = setTimeout(() => this.fail(new Error(`${uid}: no bind reply within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
  }

  fail(err: Error): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    this.abort()
    this.reject(err)
  }

  bound(client: C): void {
    this.settled = true
    clearTimeout(this.timer)
    this.resolve(client)
  }
}

/** How client i connects: from its own source address, offering permessage-deflate or not. */
export interface SocketOptions {
  localAddress: string
  deflate: boolean
  /** Features the bind asks for; empty = a seed client's bind. */
  features: readonly string[]
}

export function socketOptions(cfg: Pick<LoadConfig, 'sourceAddrs' | 'features'> & { deflate?: boolean }, i: number): SocketOptions {
  return { localAddress: localAddress(cfg.sourceAddrs, i), deflate: cfg.deflate ?? false, features: cfg.features ?? [] }
}

/**
 * Opens a raw WebSocket for `uid` and runs `handshake` on it, which binds (PROTOCOL.md's bind, or
 * Socket.IO's connect then bind) and settles `binding` once. An error, a close before the bind
 * or CONNECT_TIMEOUT_MS without one fail it; `onClose` hears of a close after the bind.
 */
export function openClient<C>(
  url: string,
  uid: string,
  opts: SocketOptions,
  onClose: (code: number) => void,
  handshake: (ws: WebSocket, binding: Binding<C>) => void,
): Promise<C> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      localAddress: opts.localAddress,
      perMessageDeflate: opts.deflate,
      skipUTF8Validation: true,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
    })
    const binding = new Binding(uid, () => ws.terminate(), resolve, reject)
    ws.on('error', (err) => binding.fail(new Error(`${uid}@${url}: ${err.message}`)))
    ws.on('close', (code, reason) => {
      if (!binding.settled) binding.fail(new Error(`${uid}: closed before bind (${code} ${reason.toString()})`))
      else onClose(code)
    })
    handshake(ws, binding)
  })
}

/**
 * Opens a raw WebSocket and binds it as `uid` (PROTOCOL.md). `ready` makes the client and
 * receives every later frame; it is called in the tick of the bind reply, so no frame behind it
 * is missed.
 */
export function bindWs<C extends { onText(s: string): void }>(
  url: string,
  uid: string,
  opts: SocketOptions,
  onClose: (code: number) => void,
  ready: (ws: WebSocket) => C,
): Promise<C> {
  return openClient<C>(url, uid, opts, onClose, (ws, binding) => {
    const fail = (err: Error): void => binding.fail(err)
    const bind = opts.features.length > 0 ? { type: 'bind', uid, ref: 'bind', features: opts.features } : { type: 'bind', uid, ref: 'bind' }
    ws.once('open', () => ws.send(JSON.stringify(bind)))
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
      ws.off('message', onFirst)
      const client = ready(ws)
      ws.on('message', (d: WebSocket.RawData) => client.onText(String(d)))
      binding.bound(client)
    }
    ws.on('message', onFirst)
  })
}

const REF_KEY = '"ref":"'

/** The ref of a compact JSON frame (JSON.stringify / fast-json-stringify), without parsing it. */
export function refOf(s: string): string | undefined {
  const i = s.indexOf(REF_KEY)
  if (i < 0) return undefined
  const j = s.indexOf('"', i + REF_KEY.length)
  return j > 0 ? s.slice(i + REF_KEY.length, j) : undefined
}

/**
 * A raw WebSocket client's sends awaiting their ack or error reply, by ref. `Reply` is what the
 * subclass learns from the reply (ok or not, an error code).
 */
export abstract class AckedWsClient<Reply> implements Sender {
  /** ref -> send time, until the ack */
  private readonly sentAt = new Map<string, number>()
  /** open loop: ref -> scheduled send time */
  private readonly scheduledAt = new Map<string, number>()
  private nextRef = 0

  protected constructor(
    protected readonly ws: WebSocket,
    private readonly onAck: AckListener,
  ) {}

  abstract send(scheduledAt: number): void

  /** what the reply to `ref`, sent at `sentAt` (scheduled at `scheduledAt`, else -1), counts for */
  protected abstract settled(ref: string, sentAt: number, scheduledAt: number, reply: Reply): void

  /** un-acked sends on this connection */
  pending(): number {
    return this.sentAt.size
  }

  protected newRef(): string {
    return String(this.nextRef++)
  }

  /** `ref` went out at `now`; `scheduledAt` < 0 when not scheduled (closed loop) */
  protected track(ref: string, now: number, scheduledAt: number): void {
    this.sentAt.set(ref, now)
    if (scheduledAt >= 0) this.scheduledAt.set(ref, scheduledAt)
  }

  /** Ack or error reply for one of our refs; false when the ref is not ours or already done. */
  protected finish(ref: string, reply: Reply): boolean {
    const t = this.sentAt.get(ref)
    if (t === undefined) return false
    this.sentAt.delete(ref)
    let s = -1
    if (this.scheduledAt.size > 0) {
      s = this.scheduledAt.get(ref) ?? -1
      this.scheduledAt.delete(ref)
    }
    this.settled(ref, t, s, reply)
    this.onAck(this)
    return true
  }

  close(): void {
    this.ws.terminate()
  }
}

// ---------------------------------------------------------------------------------------------
// traffic

/** runs fn(0..n-1) with at most `concurrency` in flight */
export async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker))
}

/**
 * Connects the clients of P pairs a_i <-> b_i (client 2i is a_i, 2i+1 is b_i); emits 'bound'.
 * With `offline` (a share), the first pairs' b_i never connect: a_i sends to a recipient with
 * no live connection, whose messages wait for a bind (and, with WEBHOOK_URL, make an event).
 */
export async function connectPairs<C>(
  cfg: Pick<LoadConfig, 'pairs' | 'connectConcurrency' | 'runId' | 'offline'>,
  connect: (i: number, uid: string, touid: string) => Promise<C>,
): Promise<{ clients: C[]; sec: number }> {
  const n = cfg.pairs * 2
  const away = Math.round((cfg.offline ?? 0) * cfg.pairs)
  const slots = new Array<C | undefined>(n)
  const t0 = performance.now()
  await pool(n, cfg.connectConcurrency, async (i) => {
    const a = `${cfg.runId}_a_${i >> 1}`
    const b = `${cfg.runId}_b_${i >> 1}`
    if (i % 2 === 1 && i >> 1 < away) return
    slots[i] = i % 2 === 0 ? await connect(i, a, b) : await connect(i, b, a)
  })
  const clients = slots.filter((c): c is C => c !== undefined)
  const sec = (performance.now() - t0) / 1000
  writeEvent({ event: 'bound', conns: clients.length, sec })
  return { clients, sec }
}

/**
 * closed: every client keeps `window` sends un-acked (`onAck` answers each ack with a send).
 * open: sends due by the schedule go out every ~1 ms tick, round robin over the clients.
 */
export class SendLoop {
  private running = false
  private ticker: NodeJS.Timeout | undefined
  /** the clients' ack listener */
  readonly onAck: AckListener

  constructor(
    private readonly cfg: Pick<LoadConfig, 'scenario' | 'window' | 'openRate' | 'maxInflight'>,
    private readonly stats: TrafficStats,
  ) {
    this.onAck = cfg.scenario === 'closed' ? (c) => { if (this.running) c.send(-1) } : () => undefined
  }

  start(clients: Sender[]): void {
    this.running = true
    const cfg = this.cfg
    if (cfg.scenario === 'closed') {
      for (const c of clients) for (let w = 0; w < cfg.window; w++) c.send(-1)
      return
    }
    const start = performance.now()
    const perMs = cfg.openRate / 1000
    const maxPerTick = Math.max(1, Math.ceil(cfg.openRate / 10)) // never more than 100 ms of backlog at once
    let scheduled = 0
    let rr = 0
    const tick = (): void => {
      if (!this.running) return
      const due = Math.floor((performance.now() - start) * perMs)
      let n = Math.min(due - scheduled, maxPerTick)
      while (n-- > 0) {
        const at = start + scheduled / perMs
        scheduled++
        if (this.stats.inflight >= cfg.maxInflight) {
          if (this.stats.measuring) this.stats.skipped++
          continue
        }
        clients[rr].send(at)
        rr = rr + 1 === clients.length ? 0 : rr + 1
      }
      this.ticker = setTimeout(tick, 1)
    }
    tick()
  }

  stop(): void {
    this.running = false
    if (this.ticker !== undefined) clearTimeout(this.ticker)
  }
}

export function cpuSec(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since)
  return (d.user + d.system) / 1e6
}

/**
 * The measured window: counters from zero, 'measure-start' and 'measure-end' around `wait`
 * (the driver reads the servers' CPU time at both). `loadCpu`: our own cores used meanwhile.
 */
export async function measure(stats: TrafficStats, wait: (t0: number) => Promise<void>): Promise<{ wallSec: number; loadCpu: number }> {
  stats.reset()
  stats.tail?.start()
  stats.measuring = true
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  writeEvent({ event: 'measure-start' })
  await wait(t0)
  stats.measuring = false
  const wallSec = (performance.now() - t0) / 1000
  const loadCpu = cpuSec(cpu0) / wallSec
  writeEvent({ event: 'measure-end' })
  return { wallSec, loadCpu }
}

/** After the sends stop: waits while `busy()`, so that what is still missing is missing, not late. */
export async function drain(busy: () => boolean): Promise<void> {
  const until = performance.now() + DRAIN_TIMEOUT_MS
  while (busy() && performance.now() < until) await sleep(20)
}

/** A client of a traffic run: it sends to its partner, and is closed at the end. */
export interface TrafficClient extends Sender {
  close(): void
}

export interface TrafficRun<C extends TrafficClient> {
  /** Connects client i as `uid`, partner `touid`; `onAck` answers its acks (the closed loop's next send). */
  connect(i: number, uid: string, touid: string, onAck: AckListener): Promise<C>
  /** Warm up for warmupSec before the window (default true). */
  warmup?: boolean
  /** The measured window from its start `t0` (default: durationSec). */
  window?: (t0: number) => Promise<void>
  /** After the sends stopped, what the drain waits for (default: sends without a reply). */
  busy?: () => boolean
}

type TrafficConfig = Pick<
  LoadConfig,
  'scenario' | 'pairs' | 'connectConcurrency' | 'runId' | 'window' | 'openRate' | 'maxInflight' | 'warmupSec' | 'durationSec' | 'offline'
>

/**
 * One traffic run: the pairs connected, the send loop going, warm-up, the measured window, the
 * sends stopped and drained, the connections closed. Returns what every traffic result reports:
 * the window's counts, latency send→ack and, in the open loop, from the scheduled send time.
 */
export async function runTraffic<C extends TrafficClient>(cfg: TrafficConfig, stats: TrafficStats, run: TrafficRun<C>): Promise<TrafficResult> {
  const loop = new SendLoop(cfg, stats)
  const { clients, sec: connectSec } = await connectPairs(cfg, (i, uid, touid) => run.connect(i, uid, touid, loop.onAck))
  loop.start(clients)

  if (run.warmup ?? true) await sleep(cfg.warmupSec * 1000)
  const { wallSec, loadCpu } = await measure(stats, run.window ?? (() => sleep(cfg.durationSec * 1000)))

  loop.stop()
  await drain(run.busy ?? (() => stats.inflight > 0))
  const unacked = stats.inflight
  for (const c of clients) c.close()

  return {
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
    ...(stats.tail === undefined ? {} : { tail: stats.tail.sample() }),
    ...(cfg.scenario === 'open' ? { scheduledLatency: summarize(stats.scheduled), offeredRate: cfg.openRate, skipped: stats.skipped } : {}),
  }
}

// ---------------------------------------------------------------------------------------------
// process

/** One event as a JSON line on stdout. */
export function writeEvent(ev: LoadEvent | ClusterLoadEvent): void {
  process.stdout.write(JSON.stringify(ev) + '\n')
}

/** The config: argv[2] (JSON) over the defaults, so that a partial one does for runs by hand. */
export function readConfig<T extends object>(defaults: T): T {
  const arg = process.argv[2]
  return { ...defaults, ...(arg !== undefined ? (JSON.parse(arg) as Partial<T>) : {}) }
}

/** Exits with 2 after `budgetMs`: the driver kills us too, this bounds runs by hand. */
export function timeBudget(budgetMs: number, what: string): void {
  setTimeout(() => {
    writeEvent({ event: 'error', message: `${what} exceeded its time budget (${budgetMs} ms)` })
    process.exit(2)
  }, budgetMs).unref()
}

/** Runs main and exits (0, or 1 after an 'error' event) once stdout is flushed. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.stdout.write('', () => process.exit(0)),
    (err: unknown) => {
      writeEvent({ event: 'error', message: err instanceof Error ? err.message : String(err) })
      process.stdout.write('', () => process.exit(1))
    },
  )
}
