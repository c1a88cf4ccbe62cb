// A real webhook receiver for tests that run the server as a process (or two): node:http on
// a port of its own, recording every request (its Duet-Event-Id, body, signature, arrival).
// Scriptable: it answers each request at once (200 by default), or holds them unanswered
// until told; and it can be closed (connections refused) and opened again on the SAME port.
// Tests await arrivals (`waitFor`), never sleep.
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { verifySignature } from '../../src/webhook/signature.js'

export interface EventBody {
  id: string
  type: string
  ts: number
  message: { mid: string; from: string; to: string; msg: string; ts: number }
}

export interface Arrival {
  /** The Duet-Event-Id header. */
  id: string
  /** The raw body, as received. */
  body: string
  event: EventBody
  signature: string
  /** Date.now() when the body had arrived. */
  at: number
  /** Which opening of the receiver took it (0 for the first; each `open` adds one). */
  opening: number
}

export type Behaviour = { kind: 'answer'; status: number } | { kind: 'hold' }

interface Waiter {
  done: () => boolean
  resolve: () => void
}

export class Receiver {
  readonly arrivals: Arrival[] = []
  behaviour: Behaviour = { kind: 'answer', status: 200 }
  private readonly held: Array<{ arrival: Arrival; response: ServerResponse }> = []
  private readonly waiters: Waiter[] = []
  private server: Server | null = null
  private opening = -1

  private constructor(
    readonly port: number,
    readonly secret: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`
  }

  get listening(): boolean {
    return this.server !== null
  }

  /** Starts on a free port (port 0 unless given), `behaviour` from the first request. */
  static async start(secret: string, behaviour?: Behaviour, port = 0): Promise<Receiver> {
    const server = Receiver.createServer()
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    const receiver = new Receiver((server.address() as AddressInfo).port, secret)
    if (behaviour !== undefined) receiver.behaviour = behaviour
    receiver.attach(server)
    return receiver
  }

  /**
   * Started and closed at once: its port refuses connections until `open`. The port is below
   * the kernel's ephemeral range (32768 and up), or an outgoing connection of any process
   * could take it while it is closed, and `open` would fail with EADDRINUSE (seen in a run).
   */
  static async closed(secret: string, behaviour?: Behaviour): Promise<Receiver> {
    for (;;) {
      const port = 10_000 + Math.floor(Math.random() * 20_000)
      try {
        const receiver = await Receiver.start(secret, behaviour, port)
        await receiver.close()
        return receiver
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
      }
    }
  }

  private static createServer(): Server {
    // No keep-alive timeout games: the server's fetch may keep its connection between tries.
    return createServer({ keepAliveTimeout: 60_000 })
  }

  private attach(server: Server): void {
    this.server = server
    this.opening++
    const opening = this.opening
    server.on('request', (request, response) => this.receive(request, response, opening))
  }

  /** Listens again on the same port. */
  async open(): Promise<void> {
    if (this.server !== null) return
    const server = Receiver.createServer()
    server.listen(this.port, '127.0.0.1')
    await once(server, 'listening')
    this.attach(server)
  }

  /** Stops listening and cuts every connection, held requests included: the port refuses. */
  async close(): Promise<void> {
    const server = this.server
    if (server === null) return
    this.server = null
    const closed = once(server, 'close')
    server.close()
    server.closeAllConnections()
    this.held.splice(0)
    await closed
  }

  private receive(request: IncomingMessage, response: ServerResponse, opening: number): void {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const arrival: Arrival = {
        id: String(request.headers['duet-event-id']),
        body,
        event: JSON.parse(body) as EventBody,
        signature: String(request.headers['duet-signature']),
        at: Date.now(),
        opening,
      }
      this.arrivals.push(arrival)
      if (this.behaviour.kind === 'hold') this.held.push({ arrival, response })
      else response.writeHead(this.behaviour.status).end()
      this.wake()
    })
  }

  /** Answers every held request that still has a connection; resolves with how many. */
  answerHeld(status = 200): number {
    let answered = 0
    for (const { response } of this.held.splice(0)) {
      if (response.destroyed || response.socket === null || response.socket.destroyed) continue
      response.writeHead(status).end()
      answered++
    }
    return answered
  }

  /** True when `arrival` carries a valid signature for its body. */
  signed(arrival: Arrival): boolean {
    return verifySignature(this.secret, arrival.body, arrival.signature)
  }

  /** Resolves once `done()` holds, checked at every arrival (and now). */
  waitFor(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ done, resolve }))
  }

  /** Resolves with the first arrival (past or future) that matches. */
  async arrival(match: (arrival: Arrival) => boolean): Promise<Arrival> {
    await this.waitFor(() => this.arrivals.some(match))
    return this.arrivals.find(match)!
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i]!
      if (waiter.done()) {
        this.waiters.splice(i, 1)
        waiter.resolve()
      }
    }
  }
}

/** Arrivals grouped by message mid: each mid's Duet-Event-Ids, in arrival order. */
export function idsByMid(arrivals: readonly Arrival[]): Map<string, string[]> {
  const byMid = new Map<string, string[]>()
  for (const arrival of arrivals) {
    const ids = byMid.get(arrival.event.message.mid) ?? []
    ids.push(arrival.id)
    byMid.set(arrival.event.message.mid, ids)
  }
  return byMid
}
