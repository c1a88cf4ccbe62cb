// A bystander pair doing round trips while something else loads the server: the tests that
// attack or starve one part check that everyone else's chat goes on.
import { performance } from 'node:perf_hooks'
import { TestClient } from './ws-client.js'

/** A bystander pair's round trips (send → push → ack) while `during` runs: their count and the slowest, ms. */
export async function bystanderWhile(wsUrl: string, during: Promise<unknown>): Promise<{ trips: number; slowest: number }> {
  const [a, b] = await Promise.all([TestClient.bound(wsUrl, 'bystander-a'), TestClient.bound(wsUrl, 'bystander-b')])
  let done = false
  void during.then(
    () => (done = true),
    () => (done = true),
  )
  let slowest = 0
  let trips = 0
  do {
    const started = performance.now()
    const ack = await a.request({ type: 'send', touid: 'bystander-b', msg: 'ping' })
    await b.nextCode(200)
    slowest = Math.max(slowest, performance.now() - started)
    trips++
    if (ack.code !== 204) throw new Error(`bystander not acked: ${JSON.stringify(ack)}`)
  } while (!done)
  await Promise.all([a.close(), b.close()])
  return { trips, slowest }
}
