// The receiver of the `+webhook` targets' events (WEBHOOK_URL), in the driver's process: it
// answers 204 at once and counts, so a run can report how many events the server sent in its
// measured window beside what the events cost the server.
import { createServer, type Server } from 'node:http'

/** At least 32 characters, as the server requires; a bench secret, never a real one. */
export const BENCH_WEBHOOK_SECRET = 'duet-bench-webhook-secret-0123456789'

export class WebhookReceiver {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly count: { received: number },
  ) {}

  get received(): number {
    return this.count.received
  }

  static async start(): Promise<WebhookReceiver> {
    const count = { received: 0 }
    const server = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        count.received++
        res.statusCode = 204
        res.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('webhook receiver has no port')
    return new WebhookReceiver(server, `http://127.0.0.1:${address.port}/duet-events`, count)
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}
