// One webhook request: POST a body, resolve with the status once the answer's head is in.
// node:http(s) with a keep-alive agent of WEBHOOK_CONCURRENCY sockets, not fetch: fetch's
// streams cost several times the CPU per request (bench/README.md), and nothing of the answer
// but its status is used.
import http from 'node:http'
import https from 'node:https'

export interface Poster {
  /**
   * Resolves with the status; rejects on a network error, on `timeoutMs` without an answer, or
   * when `signal` aborts. An answer whose body is still coming at `timeoutMs` is cut off then.
   */
  post(body: string, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal): Promise<number>
  close(): void
}

export function createPoster(url: string, sockets: number): Poster {
  const target = new URL(url)
  const secure = target.protocol === 'https:'
  const agent = new (secure ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: sockets })
  const request = secure ? https.request : http.request
  return {
    post: (body, headers, timeoutMs, signal) =>
      new Promise<number>((resolve, reject) => {
        const req = request(target, { method: 'POST', agent, signal, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
          resolve(res.statusCode ?? 0)
          // Drained, not read: the socket goes back to the agent for the next event. A body cut
          // off by the timeout errors here, after the status was taken.
          res.on('error', () => undefined)
          res.resume()
        })
        const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
        req.on('close', () => clearTimeout(timer))
        req.on('error', reject)
        req.end(body)
      }),
    close: () => agent.destroy(),
  }
}
