// Erase and export of a user with a long history (issue 19, parts 3 and 4):
// `npm run bench:erase` (builds, then runs dist/bench/erase.js).
// SQLite is filled directly (one transaction, no server) with MESSAGES messages between
// `heavy` and PEERS partners, both directions, plus OTHERS messages between other users. Then
// the real app serves it, and while a WebSocket client sends a message every PING_MS and
// times its 204 (the ping), three phases run one after the other:
//   idle:   nothing else, for the baseline (IDLE_MS)
//   export: GET /admin/users/heavy/export, read to the end: RSS sampled every 50 ms
//   erase:  DELETE /admin/users/heavy
// Each phase prints its longest event-loop stall (monitorEventLoopDelay max) and the ping's
// worst and 99th-percentile round trip. All in one process: the figures compare with each
// other (idle is the baseline), not with another machine's.
// Options (env or --key=value): MESSAGES (1000000)  PEERS (100)  OTHERS (10000)  PING_MS (5)  IDLE_MS (2000)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import WebSocket from 'ws'
import { build } from '../app.js'
import { SqliteMessageStore } from '../src/store/sqlite-store.js'

const args = new Map(
  process.argv.slice(2).map((a) => {
    const m = /^(?:--)?([A-Za-z][\w-]*)=(.*)$/.exec(a)
    if (m === null) throw new Error(`bad argument ${a}: use KEY=VALUE`)
    return [m[1]!.toUpperCase().replace(/-/g, '_'), m[2]!] as const
  }),
)
const num = (name: string, def: number): number => Number(args.get(name) ?? process.env[name] ?? def)
const MESSAGES = num('MESSAGES', 1_000_000)
const PEERS = num('PEERS', 100)
const OTHERS = num('OTHERS', 10_000)
const PING_MS = num('PING_MS', 5)
const IDLE_MS = num('IDLE_MS', 2000)

const mb = (bytes: number): string => (bytes / 1048576).toFixed(1)
const ms = (value: number): string => value.toFixed(1)

/** Writes the rows as an older duet would have: the store rebuilds its conversation list on open. */
async function fill(path: string): Promise<void> {
  await new SqliteMessageStore({ path }).close() // creates the schema
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = OFF')
  const insert = db.prepare('INSERT INTO duet_messages (sender, recipient, msg, ts, read, delivered, ref) VALUES (?, ?, ?, ?, ?, 1, NULL)')
  const text = 'a message of about a hundred bytes, as a chat line often is: some words, a link, an emoji 🙂 ....'
  const start = Date.now() - MESSAGES
  db.transaction(() => {
    for (let i = 0; i < MESSAGES; i++) {
      const peer = `peer${i % PEERS}`
      const out = i % 2 === 0
      insert.run(out ? 'heavy' : peer, out ? peer : 'heavy', text, start + i, out ? 0 : 1)
      if (i % Math.max(1, Math.floor(MESSAGES / Math.max(1, OTHERS))) === 0) insert.run(`other${i % 50}`, `other${(i + 1) % 50}`, text, start + i, 0)
    }
  })()
  db.close()
}

interface Pinger {
  rtts: number[]
  stop(): Promise<void>
}

/** A connection sending to another user every PING_MS and timing each 204. */
async function startPinger(wsUrl: string): Promise<Pinger> {
  const socket = new WebSocket(wsUrl)
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject))
  const sentAt = new Map<string, number>()
  const rtts: number[] = []
  let bound!: () => void
  const ready = new Promise<void>((resolve) => (bound = resolve))
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as { code: number; ref?: string }
    if (frame.code === 201) bound()
    const at = frame.ref === undefined ? undefined : sentAt.get(frame.ref)
    if (at !== undefined) {
      rtts.push(performance.now() - at)
      sentAt.delete(frame.ref!)
    }
  })
  socket.send(JSON.stringify({ type: 'bind', uid: 'pinger' }))
  await ready
  let n = 0
  const timer = setInterval(() => {
    const ref = `p${++n}`
    sentAt.set(ref, performance.now())
    socket.send(JSON.stringify({ type: 'send', touid: 'listener', msg: 'ping', ref }))
  }, PING_MS)
  return {
    rtts,
    async stop() {
      clearInterval(timer)
      socket.close()
      await new Promise((resolve) => socket.once('close', resolve))
    },
  }
}

interface PhaseResult {
  name: string
  seconds: number
  stallMs: number
  stallP99Ms: number
  pingMaxMs: number
  pingP99Ms: number
  pings: number
  note: string
}

async function phase(name: string, pinger: Pinger, run: () => Promise<string>): Promise<PhaseResult> {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  pinger.rtts.length = 0
  delay.enable()
  const started = performance.now()
  const note = await run()
  const seconds = (performance.now() - started) / 1000
  delay.disable()
  const sorted = [...pinger.rtts].sort((a, b) => a - b)
  return {
    name,
    seconds,
    stallMs: delay.max / 1e6,
    stallP99Ms: delay.percentile(99) / 1e6,
    pingMaxMs: sorted[sorted.length - 1] ?? NaN,
    pingP99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? NaN,
    pings: sorted.length,
    note,
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'duet-bench-erase-'))
  const path = join(dir, 'duet.db')
  try {
    let t0 = performance.now()
    await fill(path)
    console.log(`filled ${MESSAGES} messages of heavy with ${PEERS} peers (+ others) in ${ms((performance.now() - t0) / 1000)} s`)
    t0 = performance.now()
    const app = await build({ env: {}, config: { storeUrl: `sqlite:${path}`, host: '127.0.0.1', port: 0, logLevel: 'silent' }, logger: false })
    console.log(`opened (conversation list rebuilt) in ${ms((performance.now() - t0) / 1000)} s`)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    const base = `http://127.0.0.1:${address.port}`
    const pinger = await startPinger(`ws://127.0.0.1:${address.port}/ws`)
    const results: PhaseResult[] = []

    results.push(await phase('idle', pinger, () => new Promise((resolve) => setTimeout(() => resolve(''), IDLE_MS))))

    global.gc?.() // before the phase: a full collection stops the event loop too
    const heapBefore = process.memoryUsage().heapUsed
    results.push(
      await phase('export', pinger, async () => {
        const before = process.memoryUsage().rss
        let peak = before
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50)
        const res = await fetch(`${base}/admin/users/heavy/export`)
        let bytes = 0
        let lines = 0
        // RSS at each tenth of the messages: flat, or growing with what was sent.
        const milestones: string[] = []
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          bytes += chunk.length
          for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) {
            if (++lines % Math.max(1, Math.floor(MESSAGES / 10)) === 0) milestones.push(mb(process.memoryUsage().rss))
          }
        }
        clearInterval(sampler)
        const after = process.memoryUsage().rss
        return `${lines} lines, ${mb(bytes)} MB; RSS ${mb(before)} MB before, ${mb(peak)} MB peak (+${mb(peak - before)}), ${mb(after)} MB after; at each tenth: ${milestones.join(' ')}`
      }),
    )

    // What the export left behind, once collected: a leak would show here, not in RSS.
    global.gc?.()
    const heapAfter = process.memoryUsage().heapUsed
    console.log(`heap after a full collection: ${mb(heapBefore)} MB before the export, ${mb(heapAfter)} MB after`)

    results.push(
      await phase('erase', pinger, async () => {
        const res = await fetch(`${base}/admin/users/heavy`, { method: 'DELETE' })
        const body = (await res.json()) as { deleted: number }
        return `${res.status} deleted ${body.deleted}`
      }),
    )

    await pinger.stop()
    await app.close()
    console.log(`\nphase   seconds  stall max ms  stall p99 ms  ping max ms  ping p99 ms  pings  notes`)
    for (const r of results) {
      console.log(
        `${r.name.padEnd(7)} ${ms(r.seconds).padStart(7)}  ${ms(r.stallMs).padStart(12)}  ${ms(r.stallP99Ms).padStart(12)}  ${ms(r.pingMaxMs).padStart(11)}  ${ms(r.pingP99Ms).padStart(11)}  ${String(r.pings).padStart(5)}  ${r.note}`,
      )
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
