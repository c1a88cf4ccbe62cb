// Prometheus metrics with prom-client: the hub's traffic (through the HubMetrics hooks),
// connection counts read from the hub at scrape time, and Node's default metrics
// (event-loop lag, GC, memory). Served by routes/metrics.ts.
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { HubMetrics } from '../src/hub/hub-metrics.js'
import type { TryResult, WebhookMetrics } from '../src/webhook/dispatcher.js'
import { LatencyHistogram, labelValue, renderHistogram } from '../src/metrics/histogram.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's metrics; `scrape()` renders them with the process-wide defaults. */
    metrics: { hub: HubMetrics; webhook: WebhookMetrics; scrape: () => Promise<string>; contentType: string }
  }
}

/**
 * Frame types as labels: the protocol's client frames, the server's signal frames and "" (an
 * unreadable frame). The client chooses `type`, so anything else is folded into one value.
 */
const KNOWN_TYPES = new Set(['bind', 'send', 'join', 'exit', 'typing', 'watch', 'unwatch', 'receipt', 'presence', ''])
const typeLabel = (type: string): string => (KNOWN_TYPES.has(type) ? type : 'other')

/** Latency buckets in seconds, from sub-millisecond group commits to a stalled store. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
/** A webhook request crosses a network to another service: up to WEBHOOK_TIMEOUT_MS. */
const WEBHOOK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

// Default metrics observe the process, not an app: collected once, however many apps
// a process builds (the tests build dozens).
let processRegistry: Registry | undefined
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

export default fp(
  async (app) => {
    const registry = new Registry()
    const registers = [registry]
    // Every series says which node it comes from, as the logs and admin output do.
    const node = `node="${labelValue(app.config.nodeId)}"`

    new Gauge({
      name: 'duet_connections',
      help: 'Open WebSocket connections on this node, bound or not',
      registers,
      collect() {
        this.set(app.hub.registry.connectionCount)
      },
    })
    new Gauge({
      name: 'duet_online_users',
      help: 'Distinct uids with a bound connection on this node',
      registers,
      collect() {
        this.set(app.hub.registry.onlineUids().length)
      },
    })
    // The hot path only adds to plain numbers; prom-client reads them when scraped. Its own
    // inc() hashes the labels on every call, several times per chat message.
    let openedCount = 0
    const framesInCount = new Map<string, number>()
    /** type label -> code -> frames */
    const framesOutCount = new Map<string, Map<number, number>>()
    const outByCode = (keep: (code: number) => boolean): Map<number, number> => {
      const sums = new Map<number, number>()
      for (const byCode of framesOutCount.values()) {
        for (const [code, n] of byCode) if (keep(code)) sums.set(code, (sums.get(code) ?? 0) + n)
      }
      return sums
    }
    new Counter({
      name: 'duet_connections_opened_total',
      help: 'WebSocket connections opened',
      registers,
      collect() {
        this.reset()
        this.inc(openedCount)
      },
    })
    new Counter({
      name: 'duet_binds_total',
      help: 'Successful binds (201)',
      registers,
      collect() {
        this.reset()
        this.inc(outByCode((code) => code === 201).get(201) ?? 0)
      },
    })
    new Counter({
      name: 'duet_frames_in_total',
      help: 'Client frames received, by type ("" = unreadable, other = unknown type)',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset()
        for (const [type, n] of framesInCount) this.inc({ type }, n)
      },
    })
    new Counter({
      name: 'duet_frames_out_total',
      help: 'Server frames sent, by type and code',
      labelNames: ['type', 'code'],
      registers,
      collect() {
        this.reset()
        for (const [type, byCode] of framesOutCount) for (const [code, n] of byCode) this.inc({ type, code }, n)
      },
    })
    new Counter({
      name: 'duet_errors_total',
      help: 'Error frames sent, by code',
      labelNames: ['code'],
      registers,
      collect() {
        this.reset()
        for (const [code, n] of outByCode((c) => c >= 400)) this.inc({ code }, n)
      },
    })
    // Webhooks (WEBHOOK_URL): the outbox's pending events (cluster-wide: the store's count),
    // and this node's tries by outcome and their latency.
    const webhookTries = new Map<TryResult, number>()
    const webhookLatency = new LatencyHistogram(WEBHOOK_BUCKETS)
    if (app.config.webhookUrl !== undefined) {
      new Gauge({
        name: 'duet_webhook_events_pending',
        help: 'Webhook events waiting to be sent (in the outbox, every node\'s)',
        registers,
        async collect() {
          // A store that cannot answer must not take the rest of the scrape with it.
          const pending = await app.store.outbox.pendingCount().catch((err: unknown) => {
            app.log.warn({ err }, 'webhook pending count unavailable')
            return NaN
          })
          this.set(pending)
        },
      })
      const outcomes: Array<[TryResult, string, string]> = [
        ['sent', 'duet_webhook_events_sent_total', 'Webhook events this node delivered (the receiver answered 2xx)'],
        ['failed', 'duet_webhook_events_failed_total', 'Webhook events this node gave up on (a 4xx, or the last try failed)'],
        ['retry', 'duet_webhook_retries_total', 'Webhook tries by this node that failed and were scheduled again'],
      ]
      for (const [result, name, help] of outcomes) {
        new Counter({
          name,
          help,
          registers,
          collect() {
            this.reset()
            this.inc(webhookTries.get(result) ?? 0)
          },
        })
      }
    }
    const delivery = new LatencyHistogram(LATENCY_BUCKETS)
    const storeWrites = { ok: new LatencyHistogram(LATENCY_BUCKETS), error: new LatencyHistogram(LATENCY_BUCKETS) }
    const histograms = (): string =>
      [
        renderHistogram('duet_message_delivery_seconds', 'From a message being stored to its live push to the recipient', [
          [node, delivery],
        ]),
        renderHistogram('duet_store_write_seconds', 'Store append latency (durable commit included), by result', [
          [`${node},result="ok"`, storeWrites.ok],
          [`${node},result="error"`, storeWrites.error],
        ]),
        ...(app.config.webhookUrl === undefined
          ? []
          : [renderHistogram('duet_webhook_request_seconds', 'Webhook request latency, to the answer or the failure', [[node, webhookLatency]])]),
      ].join('\n\n')

    const hub: HubMetrics = {
      connectionOpened: () => {
        openedCount++
      },
      frameIn: (type) => {
        const label = typeLabel(type)
        framesInCount.set(label, (framesInCount.get(label) ?? 0) + 1)
      },
      frameOut: (type, code, count = 1) => {
        if (count <= 0) return
        const label = typeLabel(type)
        let byCode = framesOutCount.get(label)
        if (byCode === undefined) framesOutCount.set(label, (byCode = new Map()))
        byCode.set(code, (byCode.get(code) ?? 0) + count)
      },
      storeWrite: (seconds, ok) => (ok ? storeWrites.ok : storeWrites.error).observe(seconds),
      delivered: (seconds) => delivery.observe(Math.max(0, seconds)),
    }

    const webhook: WebhookMetrics = {
      tried: (result, seconds) => {
        webhookTries.set(result, (webhookTries.get(result) ?? 0) + 1)
        webhookLatency.observe(seconds)
      },
    }

    // This app's metrics and the process-wide defaults, rendered through one registry that
    // adds the node label (merged once every metric above is registered).
    const scraped = Registry.merge([registry, processMetrics()])
    scraped.setDefaultLabels({ node: app.config.nodeId })
    app.decorate('metrics', {
      hub,
      webhook,
      contentType: scraped.contentType,
      scrape: async () => `${await scraped.metrics()}\n${histograms()}\n`,
    })
  },
  { name: 'metrics', dependencies: ['config', 'store'] },
)
