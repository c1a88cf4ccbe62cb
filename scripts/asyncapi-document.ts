// Builds the AsyncAPI 3 description of /ws from the TypeBox frame schemas and the code
// table, for the writer script and the sync test. Nothing here is written by hand twice:
// a new field or code shows up in the document on the next `npm run asyncapi`.
import type { TSchema } from '@sinclair/typebox'
import { CODE_TABLE, Code } from '../src/protocol/codes.js'
import { ClientFrameSchemas, ServerFrame } from '../src/protocol/schemas.js'
import { OPENAPI_INFO } from '../plugins/docs.js'

/** openapi/asyncapi.json at the repository root (this file runs from dist/scripts/). */
export const ASYNCAPI_PATH = new URL('../../openapi/asyncapi.json', import.meta.url)

type Json = Record<string, unknown>

/** Plain JSON Schema: TypeBox's symbols dropped, the $id moved to the component name. */
function plain(schema: TSchema): Json {
  const { $id: _id, ...rest } = JSON.parse(JSON.stringify(schema)) as Json
  return rest
}

const ref = (path: string): Json => ({ $ref: path })
const schemaRef = (name: string): Json => ref(`#/components/schemas/${name}`)

const frame = (fields: Json): Json => ({ type: '', error: false, code: 0, msg: '', uid: '', touid: '', ...fields })

/** One server message per success code, the payload pinned to its code. */
const SERVER_SUCCESS: Array<{ name: string; code: number; type: string; summary: string; required: string[]; example: Json }> = [
  {
    name: 'message',
    code: Code.MESSAGE,
    type: 'send',
    summary: 'A chat message to you; `offline: true` when replayed at bind.',
    required: ['mid', 'ts'],
    example: frame({ type: 'send', code: 200, msg: 'hi bob', uid: 'alice', touid: 'bob', mid: '42', ts: 1767225600000 }),
  },
  {
    name: 'bound',
    code: Code.BOUND,
    type: 'bind',
    summary: 'Bound; `mid` is your position, `reset` says `since` was ahead of the store.',
    required: ['mid'],
    example: frame({ type: 'bind', code: 201, msg: 'bound', uid: 'bob', mid: '41', ref: 'b1' }),
  },
  {
    name: 'joined',
    code: Code.JOINED,
    type: 'join',
    summary: 'The conversation with `touid` is open; its messages are read.',
    required: [],
    example: frame({ type: 'join', code: 202, msg: 'joined', uid: 'bob', touid: 'alice', ref: 'j1' }),
  },
  {
    name: 'exited',
    code: Code.EXITED,
    type: 'exit',
    summary: 'The open conversation (`touid`) was left.',
    required: [],
    example: frame({ type: 'exit', code: 203, msg: 'exited', uid: 'bob', touid: 'alice', ref: 'x1' }),
  },
  {
    name: 'sent',
    code: Code.SENT,
    type: 'send',
    summary: 'Ack to the sender: stored (and pushed if the peer is online). A resend with the same `ref` gets the same `mid`.',
    required: ['mid', 'ts'],
    example: frame({ type: 'send', code: 204, uid: 'alice', touid: 'bob', mid: '42', ts: 1767225600000, ref: 's1' }),
  },
  {
    name: 'receipt',
    code: Code.RECEIPT,
    type: 'receipt',
    summary:
      '(feature `receipts`) `uid` has received (`msg` `delivered`) or read (`msg` `read`) every message you sent them with a mid up to `mid`, a high-water mark.',
    required: ['mid'],
    example: frame({ type: 'receipt', code: 205, msg: 'delivered', uid: 'bob', touid: 'alice', mid: '42' }),
  },
  {
    // Not `typing`: that name is the client's frame (the messages share one namespace).
    name: 'peerTyping',
    code: Code.TYPING,
    type: 'typing',
    summary: '(feature `typing`) `uid` is typing to you; at most one per second per pair.',
    required: [],
    example: frame({ type: 'typing', code: 206, uid: 'alice', touid: 'bob' }),
  },
  {
    name: 'presence',
    code: Code.PRESENCE,
    type: 'presence',
    summary: '(feature `presence`) `uid` is `online` or `offline` (`msg`): the reply to `watch`, then pushed on every change.',
    required: [],
    example: frame({ type: 'presence', code: 207, msg: 'online', uid: 'bob', touid: 'alice', ref: 'w1' }),
  },
  {
    name: 'unwatched',
    code: Code.UNWATCHED,
    type: 'unwatch',
    summary: '`touid` is no longer watched.',
    required: [],
    example: frame({ type: 'unwatch', code: 208, msg: 'unwatched', uid: 'alice', touid: 'bob', ref: 'u1' }),
  },
]

const CLIENT_EXAMPLES: Record<string, Json> = {
  bind: { type: 'bind', uid: 'bob', token: '<JWT when auth is on>', since: '41', features: ['receipts', 'typing', 'presence', 'carbons'], ref: 'b1' },
  send: { type: 'send', touid: 'bob', msg: 'hi bob', ref: 's1' },
  join: { type: 'join', touid: 'alice', ref: 'j1' },
  exit: { type: 'exit', ref: 'x1' },
  typing: { type: 'typing', touid: 'bob' },
  watch: { type: 'watch', touid: 'bob', ref: 'w1' },
  unwatch: { type: 'unwatch', touid: 'bob', ref: 'u1' },
}

/** What the server answers to each client frame, besides errors. */
const REPLIES: Record<string, string[]> = {
  bind: ['bound'],
  send: ['sent'],
  join: ['joined'],
  exit: ['exited'],
  typing: [], // none when it succeeds
  watch: ['presence'],
  unwatch: ['unwatched'],
}

function codeTable(): string {
  const rows = CODE_TABLE.map((c) => `| ${c.code} | ${c.type === '' ? '""' : c.type} | ${c.error} | ${c.meaning} |`)
  return ['| code | type | error | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

export function buildAsyncApi(): Json {
  const errorCodes = CODE_TABLE.filter((c) => c.error).map((c) => c.code)
  const schemas: Json = { ServerFrame: plain(ServerFrame) }
  const messages: Json = {}
  const operations: Json = {}
  const channelMessages: Json = {}
  const channel = ref('#/channels/chat')

  for (const [type, schema] of Object.entries(ClientFrameSchemas)) {
    const name = schema.$id as string
    schemas[name] = plain(schema)
    messages[type] = {
      name: type,
      title: `${type} (client → server)`,
      summary: schema.description,
      payload: schemaRef(name),
      examples: [{ payload: CLIENT_EXAMPLES[type] }],
    }
  }
  for (const s of SERVER_SUCCESS) {
    messages[s.name] = {
      name: s.name,
      title: `${s.code} ${s.name} (server → client)`,
      summary: s.summary,
      payload: {
        allOf: [
          schemaRef('ServerFrame'),
          {
            type: 'object',
            properties: { type: { const: s.type }, error: { const: false }, code: { const: s.code } },
            required: s.required,
          },
        ],
      },
      examples: [{ payload: s.example }],
    }
  }
  messages.error = {
    name: 'error',
    title: 'error (server → client)',
    summary: 'Any error reply: exactly one per bad frame, `ref` echoed; the connection stays usable (409 and 503 excepted).',
    payload: {
      allOf: [schemaRef('ServerFrame'), { type: 'object', properties: { error: { const: true }, code: { enum: errorCodes } } }],
    },
    examples: [{ payload: frame({ type: 'send', error: true, code: 402, msg: 'not bound: send bind first', ref: 's1' }) }],
  }
  for (const name of Object.keys(messages)) channelMessages[name] = ref(`#/components/messages/${name}`)

  for (const [type, schema] of Object.entries(ClientFrameSchemas)) {
    operations[type] = {
      action: 'receive',
      channel,
      summary: schema.description,
      messages: [ref(`#/channels/chat/messages/${type}`)],
      reply: {
        channel,
        messages: [...REPLIES[type]!, 'error'].map((m) => ref(`#/channels/chat/messages/${m}`)),
      },
    }
  }
  operations.deliver = {
    action: 'send',
    channel,
    summary: 'Pushes each stored message to every live connection of its recipient, in mid order.',
    messages: [ref('#/channels/chat/messages/message')],
  }
  operations.signal = {
    action: 'send',
    channel,
    summary:
      'Opt-in signals, only to connections whose bind asked for the feature: receipts (205), typing (206), presence changes (207); ' +
      'with `carbons`, your own messages sent from your other connections (200 with `uid` = you).',
    messages: ['receipt', 'peerTyping', 'presence', 'message'].map((m) => ref(`#/channels/chat/messages/${m}`)),
  }
  operations.notify = {
    action: 'send',
    channel,
    summary: 'Unsolicited errors: 409 before closing a replaced connection, 503 before a shutdown.',
    messages: [ref('#/channels/chat/messages/error')],
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: `${OPENAPI_INFO.title} chat protocol`,
      version: OPENAPI_INFO.version,
      description:
        'Protocol v1 on `/ws`: JSON objects in text frames. Every server frame carries the six seed fields ' +
        '`type, error, code, msg, uid, touid`; clients may add `ref` (echoed on every direct reply), ' +
        '`token`, `since` and `features` on bind (opt-in signals: receipts, typing, presence, carbons). HTTP routes: openapi/openapi.json.\n\n' +
        codeTable(),
    },
    defaultContentType: 'application/json',
    servers: {
      local: { host: 'localhost:3000', protocol: 'ws', pathname: '/ws', description: 'npm start (HOST/PORT)' },
    },
    channels: {
      chat: { address: '/ws', title: 'chat', description: 'One connection per user device.', messages: channelMessages },
    },
    operations,
    components: { schemas, messages },
  }
}

export function generateAsyncApi(): string {
  return `${JSON.stringify(buildAsyncApi(), null, 2)}\n`
}
