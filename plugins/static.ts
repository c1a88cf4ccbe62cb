// Serves the demo chat page at / from dist/web (bundled by `npm run build:web`), with a
// strict Content-Security-Policy: the page loads only its own script and style and
// talks only to this origin, so injected text could not run even if it were parsed.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fp from 'fastify-plugin'
import fastifyStatic from '@fastify/static'

/** dist/web, next to dist/plugins/ where this file runs from. */
export const WEB_ROOT = fileURLToPath(new URL('../web/', import.meta.url))

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

export default fp(
  async (app) => {
    if (!existsSync(`${WEB_ROOT}index.html`)) {
      app.log.warn({ root: WEB_ROOT }, 'demo page not built (npm run build:web): / answers 503')
      app.get('/', { schema: { hide: true } }, async (_request, reply) =>
        reply.code(503).type('text/plain').send('The demo page is not built: run `npm run build`.\n'),
      )
      return
    }
    await app.register(fastifyStatic, {
      root: WEB_ROOT,
      prefix: '/',
      // One route per built file instead of a catch-all, so unknown paths stay plain 404s.
      wildcard: false,
      // swagger-ui registers @fastify/static too; only one may decorate the reply.
      decorateReply: false,
      cacheControl: true,
      maxAge: 0,
      setHeaders: (res) => {
        for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value)
      },
    })
  },
  { name: 'static' },
)
