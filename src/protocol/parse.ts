// Turns one raw WebSocket message into a typed client frame or the single error reply
// it deserves. Validators are compiled once, at module load.
import { TypeCompiler, ValueErrorType, type TypeCheck, type ValueError } from '@sinclair/typebox/compiler'
import type { TSchema } from '@sinclair/typebox'
import { Code } from './codes.js'
import { ClientFrameSchemas, isStorableText, REF_MAX, type ClientFrame, type ClientFrameType } from './schemas.js'

export interface FrameError {
  code: Code
  /** The client's `type` when it could be read, else "". */
  type: string
  ref: string | undefined
  msg: string
}

export type ParseResult = { ok: true; frame: ClientFrame } | { ok: false; error: FrameError }

const validators = Object.fromEntries(
  Object.entries(ClientFrameSchemas).map(([type, schema]) => [type, TypeCompiler.Compile(schema as TSchema)]),
) as Record<ClientFrameType, TypeCheck<TSchema>>

const TYPE_ECHO_MAX = 32
const TYPE_LIST = 'bind, send, join, exit, typing, watch or unwatch'

export function parseFrame(data: string): ParseResult {
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return fail(Code.NOT_JSON, '', undefined, 'frame is not valid JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(Code.NOT_JSON, '', undefined, 'frame must be a JSON object')
  }
  const record = value as Record<string, unknown>
  // Echoed only when valid (docs/PROTOCOL.md): a refused ref is not sent back as if it were one.
  const ref = typeof record.ref === 'string' && record.ref.length <= REF_MAX && isStorableText(record.ref) ? record.ref : undefined
  const type = record.type
  if (typeof type !== 'string') {
    const msg = type === undefined ? `type: required (${TYPE_LIST})` : 'type: must be a string'
    return fail(Code.BAD_FRAME, '', ref, msg)
  }
  const echoType = type.length <= TYPE_ECHO_MAX ? type : ''
  if (!Object.hasOwn(validators, type)) {
    return fail(Code.UNKNOWN_TYPE, echoType, ref, `type: unknown type, expected ${TYPE_LIST}`)
  }
  const refusal = schemaRefusal(validators[type as ClientFrameType], value)
  if (refusal !== null) return fail(Code.BAD_FRAME, echoType, ref, refusal)
  return { ok: true, frame: value as ClientFrame }
}

/**
 * Why `value` fails the schema (`field: what is wrong`, the first violation), or null when it
 * passes: the text of a frame's 400, and of POST /admin/messages' (`whole` names the value).
 */
export function schemaRefusal(check: TypeCheck<TSchema>, value: unknown, whole = 'frame'): string | null {
  if (check.Check(value)) return null
  const first = check.Errors(value).First()
  const field = first?.path.slice(1) || whole
  return `${field}: ${first === undefined ? 'invalid' : describe(first)}`
}

function fail(code: Code, type: string, ref: string | undefined, msg: string): ParseResult {
  return { ok: false, error: { code, type, ref, msg } }
}

/** A client author's reading of the first schema violation. */
function describe(error: ValueError): string {
  const schema = error.schema as { minLength?: number; maxLength?: number }
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'required'
    case ValueErrorType.String:
      return 'must be a string'
    case ValueErrorType.StringMinLength:
      return 'must not be empty'
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength} characters`
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${(error.schema as { maxItems?: number }).maxItems} items`
    case ValueErrorType.Array:
      return 'must be an array of strings'
    case ValueErrorType.StringPattern:
      return 'must be a string of digits' // the one pattern left: since
    case ValueErrorType.StringFormat:
      return typeof error.value === 'string' && error.value.includes('\u0000')
        ? 'must not contain NUL characters'
        : 'must not contain lone UTF-16 surrogates'
    default:
      return error.message
  }
}

/** Length in characters (code points), counting surrogate pairs once. */
export function charLength(text: string, limit: number): number {
  // Fast path: UTF-16 units bound code points from above.
  if (text.length <= limit) return text.length
  let count = 0
  for (const _ of text) count++
  return count
}

/**
 * Why `msg` is refused for its length (code 413), or null when it is not too long: the one
 * check of a WebSocket `send` and of POST /admin/messages.
 */
export function lengthRefusal(msg: string, max: number): string | null {
  return charLength(msg, max) > max ? `msg: longer than ${max} characters` : null
}
