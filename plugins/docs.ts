// OpenAPI generated from the route schemas, served at /openapi.json, Swagger UI at /docs.
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

export const OPENAPI_INFO = {
  title: 'duet',
  description:
    'Real-time 1:1 chat server. The chat itself runs over the WebSocket protocol on `/ws` ' +
    '(see docs/PROTOCOL.md and openapi/asyncapi.json); these are the HTTP routes around it.',
  version: '1.0.0',
}

export default fp(
  async (app) => {
    await app.register(swagger, {
      // Named component schemas ($id) instead of def-0, def-1, ...
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
      },
      openapi: {
        openapi: '3.0.3',
        info: OPENAPI_INFO,
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN for admin routes' },
            userJwt: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'JWT',
              description: "the JWT that binds as the path's uid, when JWT_SECRET or JWT_PUBLIC_KEY is set (else no auth)",
            },
          },
        },
      },
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'docs' },
)
