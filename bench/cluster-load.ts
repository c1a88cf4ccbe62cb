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
import type { WebSocket } from 'ws'
import type { ClusterLoadConfig, ClusterLoadEvent, ClusterTrafficResult } from './cluster-types.js'
import {
  AckedWsClient,
  bindWs,
  CONNECT_TIMEOUT_MS,
  DRAIN_TIMEOUT_MS,
  isObject,
  newHistogram,
  readConfig,
  refOf,
  runMain,
  runTraffic,
  socketOptions,
  summarize,
  timeBudget,
  toMicros,
  TrafficStats,
  writeEvent,
  type AckListener,
} from './load-common.js'

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

// ---------------------------------------------------------------------------------------------
// stats

/** The shared counters, plus each message timed again at the peer (send -> delivery). */
class Stats extends TrafficStats {
  /** pushes that matched nothing awaiting delivery (whole run) */
  unexpected = 0
  readonly delivery = newHistogram()
  /**
   * Message id -> send time, until the peer gets it. One map for all clients: the message id
   * (carried in `msg`) names the sender, so the receiving client needs no link to it.
   */
  readonly awaitingDelivery = new Map<string, number>()

  refused(code: string, id: string | undefined): void {
    this.error(code)
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

  override reset(): void {
    super.reset()
    this.delivery.reset()
  }
}

// ---------------------------------------------------------------------------------------------
// client

const MSG_KEY = '"msg":"'

/** Raw WebSocket client speaking PROTOCOL.md; one per user. */
class Client extends AckedWsClient<string | null> {
  private readonly prefix: string
  private readonly padding: string

  private constructor(
    private readonly index: number,
    touid: string,
    ws: WebSocket,
    private readonly stats: Stats,
    onAck: AckListener,
    msgBytes: number,
  ) {
    super(ws, onAck)
    // Frames are built from a template: the generator must stay cheap next to the servers.
    this.prefix = `{"type":"send","touid":${JSON.stringify(touid)},"msg":"`
    this.padding = 'x'.repeat(msgBytes)
  }

  static connect(cfg: ClusterLoadConfig, index: number, url: string, uid: string, touid: string, stats: Stats, onAck: AckListener): Promise<Client> {
    return bindWs(url, uid, socketOptions(cfg, index), (code) => stats.refused(`close-${code}`, undefined), (ws) => new Client(index, touid, ws, stats, onAck, cfg.msgBytes))
  }

  send(scheduledAt: number): void {
    const ref = this.newRef()
    // The id travels in `msg` and comes back in the peer's push: "<client>.<ref>", padded
    // to msgBytes with 'x' (never a digit or '.', so the receiver knows where it ends).
    const id = `${this.index}.${ref}`
    const body = id.length >= this.padding.length ? id : id + this.padding.slice(id.length)
    const now = performance.now()
    this.stats.inflight++
    this.track(ref, now, scheduledAt)
    this.stats.awaitingDelivery.set(id, now)
    this.ws.send(`${this.prefix}${body}","ref":"${ref}"}`)
  }

  /** `code`: the error reply's, null for an ack */
  protected settled(ref: string, sentAt: number, scheduledAt: number, code: string | null): void {
    if (code === null) this.stats.acknowledged(sentAt, scheduledAt)
    else this.stats.refused(code, `${this.index}.${ref}`)
  }

  onText(s: string): void {
    // Fast paths for the server's compact JSON; anything else is parsed.
    if (s.includes('"code":204')) {
      const ref = refOf(s)
      if (ref !== undefined && this.finish(ref, null)) return
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
}

// ---------------------------------------------------------------------------------------------
// run

const emit: (ev: ClusterLoadEvent) => void = writeEvent

/** The node URL of pair `pair`'s user a (side 0) or b (side 1). */
function urlOf(cfg: ClusterLoadConfig, pair: number, side: 0 | 1): string {
  const n = cfg.urls.length
  if (cfg.placement === 'split') return cfg.urls[side % n]!
  return cfg.urls[pair % n]!
}

async function traffic(cfg: ClusterLoadConfig): Promise<ClusterTrafficResult> {
  const stats = new Stats()
  const result = await runTraffic(cfg, stats, {
    connect: (i, uid, touid, onAck) => Client.connect(cfg, i, urlOf(cfg, i >> 1, (i & 1) as 0 | 1), uid, touid, stats, onAck),
    // Acks and pushes both: a message acked but not yet pushed is late, not lost.
    busy: () => stats.inflight > 0 || stats.awaitingDelivery.size > 0,
  })
  return {
    ...result,
    deliveredPerSec: stats.delivered / result.wallSec,
    delivery: summarize(stats.delivery),
    undelivered: stats.awaitingDelivery.size,
    unexpected: stats.unexpected,
  }
}

async function main(): Promise<void> {
  const cfg = readConfig(defaults)
  if (cfg.urls.length === 0) throw new Error('urls: at least one node URL')
  if (cfg.placement === 'split' && cfg.urls.length < 2) throw new Error('placement split needs two node URLs')
  timeBudget((cfg.warmupSec + cfg.durationSec) * 1000 + CONNECT_TIMEOUT_MS * 2 + DRAIN_TIMEOUT_MS * 2, 'cluster load generator')
  emit({ event: 'result', result: await traffic(cfg) })
}

runMain(main)
