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

/**
 * A uid as a path segment. A browser's URL parser removes `.` and `..` segments, `%2E` too, so
 * those two uids cannot be asked for: the request would reach another route.
 */
function segment(id: string): string {
  if (id === '.' || id === '..') throw new RestError(0, `the uid "${id}" cannot be written in a browser's URL path`)
  return encodeURIComponent(id)
}

/** A page of the list: the newest first, or those after `before` (a previous page's `nextBefore`). */
export async function fetchConversations(uid: string, before: string | null, limit: number, token?: string): Promise<Conversations> {
  const query = new URLSearchParams({ limit: String(limit) })
  if (before !== null) query.set('before', before)
  return getJson(`/users/${segment(uid)}/conversations?${query}`, token)
}

export async function fetchHistory(uid: string, peer: string, before: string | null, token?: string): Promise<History> {
  const query = new URLSearchParams({ limit: String(HISTORY_PAGE) })
  if (before !== null) query.set('before', before)
  return getJson(`/users/${segment(uid)}/conversations/${segment(peer)}/messages?${query}`, token)
}
