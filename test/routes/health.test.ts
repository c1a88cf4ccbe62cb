import t from 'tap'
import { startApp } from '../helpers/app.js'

t.test('healthz and readyz', async (t) => {
  const { url } = await startApp(t)
  const health = await fetch(url + '/healthz')
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })
  const ready = await fetch(url + '/readyz')
  t.equal(ready.status, 200)
  t.match(await ready.json(), { status: 'ready', store: 'memory' })
})
