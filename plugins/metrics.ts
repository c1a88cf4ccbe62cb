// Prometheus metrics with prom-client: the hub's traffic (through the HubMetrics hooks),
// connection counts read from the hub at scrape time, and Node's default metrics
// (event-loop lag, GC, memory). Served by routes/metrics.ts.
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { HubMetrics } from '../src/hub/hub-metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's metrics; `scrape()` renders them with the process-wide defaults. */
    metrics: { hub: HubMetrics; scrape: () => Promise<string>; contentType: string }
  }
}

/** Frame types as labels: the client chooses `type`, so anything else is folded into one value. */
const KNOWN_TYPES = new Set(['bind', 'send', 'join', 'exit', ''])
const typeLabel = (type: string): string => (KNOWN_TYPES.has(type) ? type : 'other')

/** Latency buckets in seconds, from sub-millisecond group commits to a stalled store. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

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
    const defaults = processMetrics()

    new Gauge({
      name: 'duet_connections',
      help: 'Open WebSocket connections on this node, bound or not',
      registers,
      collect() {
        this.set(app.hub.connectionCount)
      },
    })
    new Gauge({
      name: 'duet_online_users',
      help: 'Distinct uids with a bound connection on this node',
      registers,
      collect() {
        this.set(app.hub.onlineUids().length)
      },
    })
    const opened = new Counter({ name: 'duet_connections_opened_total', help: 'WebSocket connections opened', registers })
    const binds = new Counter({ name: 'duet_binds_total', help: 'Successful binds (201)', registers })
    const framesIn = new Counter({
      name: 'duet_frames_in_total',
      help: 'Client frames received, by type ("" = unreadable, other = unknown type)',
      labelNames: ['type'],
      registers,
    })
    const framesOut = new Counter({
      name: 'duet_frames_out_total',
      help: 'Server frames sent, by type and code',
      labelNames: ['type', 'code'],
      registers,
    })
    const errors = new Counter({ name: 'duet_errors_total', help: 'Error frames sent, by code', labelNames: ['code'], registers })
    const delivery = new Histogram({
      name: 'duet_message_delivery_seconds',
      help: 'From a message being stored to its live push to the recipient',
      buckets: LATENCY_BUCKETS,
      registers,
    })
    const storeWrites = new Histogram({
      name: 'duet_store_write_seconds',
      help: 'Store append latency (durable commit included), by result',
      labelNames: ['result'],
      buckets: LATENCY_BUCKETS,
      registers,
    })

    const hub: HubMetrics = {
      connectionOpened: () => opened.inc(),
      frameIn: (type) => framesIn.inc({ type: typeLabel(type) }),
      frameOut: (type, code, count = 1) => {
        if (count <= 0) return
        framesOut.inc({ type: typeLabel(type), code }, count)
        if (code >= 400) errors.inc({ code }, count)
        else if (code === 201) binds.inc(count)
      },
      storeWrite: (seconds, ok) => storeWrites.observe({ result: ok ? 'ok' : 'error' }, seconds),
      delivered: (seconds) => delivery.observe(Math.max(0, seconds)),
    }

    app.decorate('metrics', {
      hub,
      contentType: registry.contentType,
      scrape: async () => `${await registry.metrics()}\n${await defaults.metrics()}`,
    })
  },
  { name: 'metrics' },
)
