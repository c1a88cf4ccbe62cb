// Scale load generator: holds `conns` bound connections, then drops them all and reconnects
// them at once (a reconnect storm). Started by scale.ts, several at a time when one process's
// open-file limit is too small for all the connections:
//   node dist/bench/scale-load.js '<ScaleLoadConfig JSON>'
// Writes ScaleEvent lines (JSON) on stdout; each waits for one line on stdin (the driver reads
// the server's RSS and descriptors meanwhile, and starts every generator's next phase at once).
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'

export interface ScaleLoadConfig {
  url: string
  conns: number
  /** first uid index: generators never share a uid */
  offset: number
  /** connects in flight while holding */
  concurrency: number
  /** connects in flight during the storm */
  stormConcurrency: number
  sourceAddrs: number
  runId: string
}

export interface PhaseResult {
  conns: number
  failed: number
  firstError: string
  sec: number
}

export type ScaleEvent =
  | { event: 'held'; result: PhaseResult }
  | { event: 'dropped'; sec: number }
  | { event: 'stormed'; result: PhaseResult }
  | { event: 'error'; message: string }

const CONNECT_TIMEOUT_MS = 30_000

function emit(ev: ScaleEvent): void {
  process.stdout.write(JSON.stringify(ev) + '\n')
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
/** Waits for the driver's go-ahead. */
async function go(): Promise<void> {
  const next = await lines.next()
  if (next.done === true) throw new Error('the driver went away')
}

/** Opens a connection and binds it; resolves with the socket once 201 arrived. */
function bind(cfg: ScaleLoadConfig, i: number): Promise<WebSocket> {
  const uid = `${cfg.runId}_${cfg.offset + i}`
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(cfg.url, {
      localAddress: `127.0.0.${1 + ((cfg.offset + i) % cfg.sourceAddrs)}`,
      perMessageDeflate: false,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
    })
    const timer = setTimeout(() => fail(new Error('no bind reply in time')), CONNECT_TIMEOUT_MS)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      ws.terminate()
      reject(err)
    }
    ws.once('error', fail)
    ws.once('open', () => ws.send(JSON.stringify({ type: 'bind', uid })))
    ws.once('message', (data) => {
      clearTimeout(timer)
      if (!String(data).includes('"code":201')) return fail(new Error(`bind refused: ${String(data).slice(0, 200)}`))
      ws.off('error', fail)
      ws.on('error', () => undefined) // a dropped connection is counted when the phase ends
      resolve(ws)
    })
  })
}

/** Binds connections 0..n-1, `concurrency` at a time. */
async function bindAll(cfg: ScaleLoadConfig, concurrency: number): Promise<{ sockets: WebSocket[]; result: PhaseResult }> {
  const sockets: WebSocket[] = []
  let next = 0
  let failed = 0
  let firstError = ''
  const t0 = performance.now()
  const worker = async (): Promise<void> => {
    while (next < cfg.conns) {
      const i = next++
      try {
        sockets.push(await bind(cfg, i))
      } catch (err) {
        failed++
        if (firstError === '') firstError = (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, cfg.conns) }, worker))
  const sec = (performance.now() - t0) / 1000
  return { sockets, result: { conns: sockets.length, failed, firstError, sec } }
}

/** Drops every connection (no closing handshake, like a network failure) and waits for the closes. */
async function dropAll(sockets: WebSocket[]): Promise<number> {
  const t0 = performance.now()
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve()
          ws.once('close', () => resolve())
          ws.terminate()
        }),
    ),
  )
  return (performance.now() - t0) / 1000
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as ScaleLoadConfig
  const held = await bindAll(cfg, cfg.concurrency)
  emit({ event: 'held', result: held.result })
  await go()
  emit({ event: 'dropped', sec: await dropAll(held.sockets) })
  await go()
  const storm = await bindAll(cfg, cfg.stormConcurrency)
  emit({ event: 'stormed', result: storm.result })
  await go()
  await dropAll(storm.sockets)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    emit({ event: 'error', message: err instanceof Error ? err.message : String(err) })
    process.exit(1)
  },
)
