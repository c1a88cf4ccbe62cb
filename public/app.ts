// The demo chat page: pick a uid, see your conversations (unread badges, online dots),
// open one, chat, scroll back. It talks /ws through the typed client and reads the list
// and history over REST; it has no admin powers and renders every text as text.
import { Code, DuetClient, type ChatMessage, type ConnectionState, type DuetError } from '../src/client/index.js'
import { el, timeLabel } from './dom.js'
import { CONVERSATIONS_MAX, CONVERSATIONS_PAGE, fetchConversations, fetchHistory, type Conversation } from './rest.js'
import { Thread } from './thread.js'
import { hideBanner, showBanner, ui } from './ui.js'

interface ConversationView {
  peer: string
  unread: number
  online: boolean
  last: { text: string; ts: number; mine: boolean } | null
}

/** Online flags come from REST: refreshed this often while the page is open. */
const REFRESH_MS = 10_000
/** After traffic, the list is re-read from REST once things settle: the server's counts win. */
const SETTLE_MS = 300
/** Near the top of the thread by this much: fetch the older page. */
const SCROLL_LOAD_PX = 40

let session: { uid: string; token: string | undefined; client: DuetClient; refresh: ReturnType<typeof setInterval> } | null = null
const conversations = new Map<string, ConversationView>()
/**
 * The list's pages loaded from the server: `next` is the cursor of the page after them
 * (undefined: none loaded yet, null: no more), `loaded` how many conversations they held.
 */
const pages: { next: string | null | undefined; loaded: number; loading: boolean } = { next: undefined, loaded: 0, loading: false }
let thread: Thread | null = null
let settleTimer: ReturnType<typeof setTimeout> | undefined

const STATE_LABEL: Record<ConnectionState, string> = {
  connecting: 'connecting…',
  bound: 'online',
  reconnecting: 'reconnecting…',
  closed: 'offline',
}

// ---- session ----

async function start(uid: string, token: string | undefined): Promise<void> {
  // Per tab (sessionStorage), so a second tab can be another user; a reload keeps it.
  sessionStorage.setItem('duet.uid', uid)
  if (token === undefined) sessionStorage.removeItem('duet.token')
  else sessionStorage.setItem('duet.token', token)
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`
  const client = new DuetClient({ url, uid, ...(token === undefined ? {} : { token }) })
  session = { uid, token, client, refresh: setInterval(() => void refreshConversations(), REFRESH_MS) }
  ui.login.hidden = true
  ui.chat.hidden = false
  ui.me.textContent = uid
  client.on('state', showState)
  client.on('message', receive)
  client.on('error', showError)
  client.on('bound', (info) => {
    hideBanner() // whatever went wrong before, the connection is back
    // After a reconnect the list may be stale; after a reset the thread is too.
    void refreshConversations()
    if (info.reset && thread !== null) void reopen(thread.peer)
  })
  try {
    await client.connect()
  } catch {
    return // showError has said why
  }
  const reopenPeer = sessionStorage.getItem(`duet.open.${uid}`)
  if (reopenPeer !== null) await openConversation(reopenPeer)
}

function stop(): void {
  if (session === null) return
  clearInterval(session.refresh)
  clearTimeout(settleTimer)
  session.client.close()
  session = null
  thread = null
  conversations.clear()
  Object.assign(pages, { next: undefined, loaded: 0, loading: false })
  sessionStorage.removeItem('duet.uid')
  ui.chat.hidden = true
  ui.login.hidden = false
  ui.messages.replaceChildren()
  ui.conversations.replaceChildren()
  hideBanner()
}

function showState(state: ConnectionState): void {
  ui.status.textContent = STATE_LABEL[state]
  ui.status.className = `status ${state}`
}

function showError(error: DuetError): void {
  if (error.code === Code.REPLACED) {
    showBanner('This uid was opened in another tab or device.', 'Use it here', () => {
      const current = session
      if (current === null) return
      stop()
      void start(current.uid, current.token)
    })
  } else if (error.code === Code.AUTH_FAILED) {
    stop()
    showBanner(`Sign-in refused: ${error.message}`)
  } else {
    showBanner(`${error.code}: ${error.message}`)
  }
}

// ---- conversations ----

function conversation(peer: string): ConversationView {
  let view = conversations.get(peer)
  if (view === undefined) conversations.set(peer, (view = { peer, unread: 0, online: false, last: null }))
  return view
}

/**
 * Re-reads the top of the list, as many as the loaded pages held (up to the server's
 * largest page), so the refresh keeps what is shown current; the first call loads the first
 * page. A conversation further down changes only by a new message, which brings it to the top.
 */
async function refreshConversations(): Promise<void> {
  const current = session
  if (current === null) return
  const limit = Math.min(Math.max(pages.loaded, CONVERSATIONS_PAGE), CONVERSATIONS_MAX)
  const page = await fetchConversations(current.uid, null, limit, current.token).catch(listFailed)
  if (page === undefined || session !== current) return
  if (pages.next === undefined) Object.assign(pages, { next: page.nextBefore, loaded: page.conversations.length })
  showConversations(page.conversations, current.uid)
}

/** "Show more": the page after those loaded. */
async function loadMoreConversations(): Promise<void> {
  const current = session
  if (current === null || pages.loading || typeof pages.next !== 'string') return
  pages.loading = true
  const page = await fetchConversations(current.uid, pages.next, CONVERSATIONS_PAGE, current.token).catch(listFailed)
  pages.loading = false
  if (page === undefined || session !== current) return
  Object.assign(pages, { next: page.nextBefore, loaded: pages.loaded + page.conversations.length })
  showConversations(page.conversations, current.uid)
}

function listFailed(err: Error): undefined {
  showBanner(`Could not load conversations: ${err.message}`)
  return undefined
}

function showConversations(list: Conversation[], uid: string): void {
  for (const c of list) {
    const view = conversation(c.peer)
    view.unread = c.unread
    view.online = c.online
    const text = c.lastMessage.truncated ? `${c.lastMessage.msg}…` : c.lastMessage.msg
    view.last = { text, ts: c.lastMessage.ts, mine: c.lastMessage.from === uid }
  }
  renderConversations()
}

/** Re-reads the list soon, once per burst of messages. */
function refreshSoon(): void {
  clearTimeout(settleTimer)
  settleTimer = setTimeout(() => void refreshConversations(), SETTLE_MS)
}

function renderConversations(): void {
  // Most recent first; a conversation just started (no message yet) on top.
  const recency = (view: ConversationView): number => view.last?.ts ?? Number.MAX_SAFE_INTEGER
  const views = [...conversations.values()].sort((a, b) => recency(b) - recency(a))
  ui.noConversations.hidden = views.length > 0
  ui.moreConversations.hidden = typeof pages.next !== 'string'
  ui.conversations.replaceChildren(
    ...views.map((view) => {
      const open = thread?.peer === view.peer
      const unread = open ? 0 : view.unread
      const item = el('li')
      item.dataset.peer = view.peer
      const button = el('button', 'conversation')
      button.type = 'button'
      button.setAttribute('aria-current', String(open))
      const dot = el('span', view.online ? 'dot online' : 'dot')
      dot.title = view.online ? 'online' : 'offline'
      button.append(dot, el('span', 'peer', view.peer))
      if (unread > 0) button.append(el('span', 'badge', String(unread)))
      else button.append(el('span'))
      const preview = view.last === null ? 'no messages yet' : `${view.last.mine ? 'you: ' : ''}${view.last.text}`
      button.append(el('span', 'preview', preview))
      button.addEventListener('click', () => void openConversation(view.peer))
      item.append(button)
      return item
    }),
  )
  const peer = thread === null ? undefined : conversations.get(thread.peer)
  ui.peerDot.className = peer?.online ? 'dot online' : 'dot'
}

// ---- the open thread ----

async function openConversation(peer: string): Promise<void> {
  const current = session
  if (current === null || thread?.peer === peer) return
  const opened = new Thread(peer)
  thread = opened
  sessionStorage.setItem(`duet.open.${current.uid}`, peer)
  conversation(peer).unread = 0
  ui.peerName.textContent = peer
  ui.closeThread.hidden = false
  ui.composer.hidden = false
  renderConversations()
  renderThread()
  try {
    await current.client.join(peer)
  } catch (err) {
    showBanner(`Could not open the conversation: ${(err as Error).message}`)
  }
  await loadOlder(opened)
  ui.text.focus()
}

async function reopen(peer: string): Promise<void> {
  thread = null
  await openConversation(peer)
}

async function closeConversation(): Promise<void> {
  const current = session
  if (current === null || thread === null) return
  thread = null
  sessionStorage.removeItem(`duet.open.${current.uid}`)
  ui.peerName.textContent = 'No conversation open'
  ui.closeThread.hidden = true
  ui.composer.hidden = true
  renderThread()
  renderConversations()
  await current.client.exit().catch(() => undefined)
}

/** Fetches the next older page of `target` (the first page when none is loaded). */
async function loadOlder(target: Thread): Promise<void> {
  const current = session
  if (current === null || target.loading || target.nextBefore === null) return
  target.loading = true
  try {
    const page = await fetchHistory(current.uid, target.peer, target.nextBefore ?? null, current.token)
    for (const m of page.messages) target.addStored({ mid: m.mid, from: m.from, text: m.msg, ts: m.ts })
    const first = target.nextBefore === undefined
    target.nextBefore = page.nextBefore
    if (thread === target) renderThread(first ? 'bottom' : 'keep')
  } catch (err) {
    showBanner(`Could not load history: ${(err as Error).message}`)
  } finally {
    target.loading = false
  }
}

/** Redraws the thread; 'keep' holds the visible messages in place while older ones go on top. */
function renderThread(scroll: 'bottom' | 'keep' | 'auto' = 'auto'): void {
  const { scroller } = ui
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 30
  const fromBottom = scroller.scrollHeight - scroller.scrollTop
  const uid = session?.uid
  ui.older.hidden = thread === null || thread.nextBefore === null || thread.nextBefore === undefined
  ui.messages.replaceChildren(
    ...(thread?.list() ?? []).map((m) => {
      const mine = m.from === uid
      const item = el('li', `message ${mine ? 'mine' : 'theirs'} ${m.status}`)
      if (m.mid !== null) item.dataset.mid = m.mid
      const label = m.status === 'failed' ? `not sent (${m.code})` : m.status === 'pending' ? 'sending…' : timeLabel(m.ts)
      item.append(el('span', 'text', m.text), el('time', '', label))
      return item
    }),
  )
  if (scroll === 'bottom' || (scroll === 'auto' && atBottom)) scroller.scrollTop = scroller.scrollHeight
  else if (scroll === 'keep') scroller.scrollTop = scroller.scrollHeight - fromBottom
}

function receive(message: ChatMessage): void {
  const view = conversation(message.from)
  view.last = { text: message.text, ts: message.ts, mine: false }
  if (thread?.peer === message.from) {
    thread.addStored({ mid: message.mid, from: message.from, text: message.text, ts: message.ts })
    renderThread()
  } else {
    view.unread++
  }
  renderConversations()
  refreshSoon()
}

async function sendMessage(text: string): Promise<void> {
  const current = session
  const target = thread
  if (current === null || target === null) return
  const key = target.addPending(current.uid, text)
  conversation(target.peer).last = { text, ts: Date.now(), mine: true }
  renderThread('bottom')
  renderConversations()
  try {
    const mid = await current.client.send(target.peer, text)
    target.acked(key, mid, Date.now())
    refreshSoon()
  } catch (err) {
    target.failed(key, (err as DuetError).code)
  }
  if (thread === target) renderThread()
}

// ---- wiring ----

ui.loginForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const uid = ui.uid.value.trim()
  const token = ui.token.value.trim()
  if (uid !== '') void start(uid, token === '' ? undefined : token)
})
ui.logout.addEventListener('click', stop)
ui.newForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const peer = ui.newPeer.value.trim()
  if (peer === '' || session === null) return
  if (peer === session.uid) {
    showBanner('That is you: pick another uid.')
    return
  }
  ui.newPeer.value = ''
  conversation(peer)
  void openConversation(peer)
})
ui.closeThread.addEventListener('click', () => void closeConversation())
ui.moreConversations.addEventListener('click', () => void loadMoreConversations())
ui.composer.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = ui.text.value
  if (text.trim() === '') return
  ui.text.value = ''
  void sendMessage(text)
})
ui.older.addEventListener('click', () => {
  if (thread !== null) void loadOlder(thread)
})
ui.scroller.addEventListener('scroll', () => {
  if (thread !== null && ui.scroller.scrollTop < SCROLL_LOAD_PX && thread.nextBefore) void loadOlder(thread)
})

const remembered = sessionStorage.getItem('duet.uid')
if (remembered !== null) void start(remembered, sessionStorage.getItem('duet.token') ?? undefined)
