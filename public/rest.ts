// The page's HTTP calls: the conversation list and history, typed by the routes' own
// TypeBox schemas (type-only imports: nothing of the server ends up in the bundle).
import type { Static } from '@sinclair/typebox'
import type { ConversationsResponse, HistoryResponse } from '../src/protocol/rest.js'

export type Conversations = Static<typeof ConversationsResponse>
export type Conversation = Conversations['conversations'][number]
export type History = Static<typeof HistoryResponse>
export type HistoryMessage = History['messages'][number]

export const HISTORY_PAGE = 30
/** The list's page size, and the server's largest (routes/users.ts). */
export const CONVERSATIONS_PAGE = 50
export const CONVERSATIONS_MAX = 200

export class RestError extends Error {
  override name = 'RestError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

async function getJson<T>(path: string, token: string | undefined): Promise<T> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  const res = await fetch(path, { headers })
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string }
    throw new RestError(res.status, body.message ?? res.statusText)
  }
  return (await res.json()) as T
}

const segment = encodeURIComponent

/** A page of the list: the newest first, or those after `before` (a previous page's `nextBefore`). */
export function fetchConversations(uid: string, before: string | null, limit: number, token?: string): Promise<Conversations> {
  const query = new URLSearchParams({ limit: String(limit) })
  if (before !== null) query.set('before', before)
  return getJson(`/users/${segment(uid)}/conversations?${query}`, token)
}

export function fetchHistory(uid: string, peer: string, before: string | null, token?: string): Promise<History> {
  const query = new URLSearchParams({ limit: String(HISTORY_PAGE) })
  if (before !== null) query.set('before', before)
  return getJson(`/users/${segment(uid)}/conversations/${segment(peer)}/messages?${query}`, token)
}
