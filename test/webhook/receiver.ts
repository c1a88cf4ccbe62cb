// A real webhook receiver for the tests: a node:http server on 127.0.0.1 that records every
// request (raw body bytes, headers, arrival time) and answers with a status the test scripts,
// per request. A test awaits the Nth request, or the first matching one, as a promise: no
// polling, no sleeps. A request answered 'hang' is never answered; the dispatcher's timeout
// must give up on it (its `closed` promise says when the client dropped it).
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'

/** A status to answer with, or 'hang': keep the request open, never answer. */
export type Reply = number | 'hang'

export interface ReceivedRequest {
  /** 1-based arrival number. */
  n: number
  method: string
  /** Path and query, as requested. */
  url: string
  headers: IncomingHttpHeaders
  /** The body's bytes as they came off the wire. */
  raw: Buffer
  /** The body as UTF-8 text. */
  text: string
  /** performance.now() when the whole body had arrived: for gaps between requests. */
  at: number
  /** Date.now() at the same moment: for the signature's freshness. */
  wallClock: number
  /** What the receiver answered. */
  reply: Reply
  /** Resolves when the client closed the request's connection before it was answered. */
  closedUnanswered: Promise<void>
}

/** The parsed body of a `message.offline` event. */
export interface EventBody {
  id: string
  type: string
  ts: number
  message: { mid: string; from: string; to: string; msg: string; ts: number }
}

/** Chooses the answer to a request; `request.reply` is not set yet when it is called. */
export type Responder = (request: Omit<ReceivedRequest, 'reply'>) => Reply

interface Waiter {
  match: (request: ReceivedRequest) => boolean
  resolve: (request: ReceivedRequest) => void
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export class Receiver {
  readonly requests: ReceivedRequest[] = []
  private readonly waiters: Waiter[] = []
  private scripted: Reply[] = []

  private constructor(
    private readonly server: Server,
    /** http://127.0.0.1:PORT */
    readonly origin: string,
    /** What answers a request once the script is used up (200 unless set). */
    public responder: Responder,
  ) {}

  /** Starts a receiver on `port` (0: a free one), closed when the test ends. */
  static async start(t: Teardown, options: { port?: number; responder?: Responder } = {}): Promise<Receiver> {
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
    })
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    const receiver = new Receiver(server, `http://127.0.0.1:${address.port}`, options.responder ?? (() => 200))
    server.on('request', (req: IncomingMessage, res: ServerResponse) => receiver.handle(req, res))
    t.teardown(() => receiver.close())
    return receiver
  }

  /** The URL to set as WEBHOOK_URL: the origin and `path`. */
  url(path = '/hook'): string {
    return `${this.origin}${path}`
  }

  /** The next requests get these answers, in order; then the responder answers again. */
  script(...replies: Reply[]): this {
    this.scripted.push(...replies)
    return this
  }

  /** The Nth request (1-based), already come or still to come. */
  nth(n: number): Promise<ReceivedRequest> {
    return this.waitFor((request) => request.n === n)
  }

  /** The first request, past or future, that `match` picks. */
  waitFor(match: (request: ReceivedRequest) => boolean): Promise<ReceivedRequest> {
    const found = this.requests.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve) => this.waiters.push({ match, resolve }))
  }

  /** The first request, past or future, whose event announces the message with `msg`. */
  eventFor(msg: string): Promise<ReceivedRequest> {
    return this.waitFor((request) => parseEvent(request)?.message.msg === msg)
  }

  /** The requests whose event announces the message with `msg`. */
  requestsFor(msg: string): ReceivedRequest[] {
    return this.requests.filter((request) => parseEvent(request)?.message.msg === msg)
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    // Hanging requests would hold close() forever.
    this.server.closeAllConnections()
    await closed
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    let answered = false
    // Only ever resolves: a test that never looks at it sees no unhandled rejection.
    const closedUnanswered = new Promise<void>((resolve) => {
      res.on('close', () => {
        if (!answered) resolve()
      })
    })
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      const partial = {
        n: this.requests.length + 1,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        raw,
        text: raw.toString('utf8'),
        at: performance.now(),
        wallClock: Date.now(),
        closedUnanswered,
      }
      const reply = this.scripted.length > 0 ? this.scripted.shift()! : this.responder(partial)
      const request: ReceivedRequest = { ...partial, reply }
      this.requests.push(request)
      if (reply !== 'hang') {
        answered = true
        res.writeHead(reply, { 'content-type': 'text/plain' }).end(`answered ${reply}`)
      }
      for (let i = 0; i < this.waiters.length; ) {
        const waiter = this.waiters[i]!
        if (waiter.match(request)) {
          this.waiters.splice(i, 1)
          waiter.resolve(request)
        } else i++
      }
    })
  }
}

/** The request's body as an event, or undefined when it is not JSON. */
export function parseEvent(request: Pick<ReceivedRequest, 'text'>): EventBody | undefined {
  try {
    return JSON.parse(request.text) as EventBody
  } catch {
    return undefined
  }
}

/** The request's body as an event; throws when it is not one. */
export function eventOf(request: Pick<ReceivedRequest, 'text'>): EventBody {
  const event = parseEvent(request)
  if (event === undefined) throw new Error(`not JSON: ${request.text}`)
  return event
}
