// The demo chat page: pick a uid, see your conversations (unread badges, online dots),
// open one, chat, scroll back. It talks /ws through the typed client and reads the list
// and history over REST; it has no admin powers and renders every text as text. It asks for
// every opt-in feature: ticks under your messages (receipts), "typing…", live online dots
// (presence) and your messages from your other tabs (carbons). A server without them still
// works: the dots then come from re-reading the list every few seconds.
import {
  Code,
  DuetClient,
  FEATURES,
  midAfter,
  type ChatMessage,
  type ConnectionState,
  type DuetError,
  type PresenceEvent,
  type Receipt,
  type TypingEvent,
} from '../src/client/index.js'
import { el, timeLabel } from './dom.js'
import { limits, sendFailure, textLength } from './failure.js'
import { CONVERSATIONS_MAX, CONVERSATIONS_PAGE, fetchConversations, fetchHistory, type Conversation } from './rest.js'
import { Thread, type ThreadMessage } from './thread.js'
import { hideBanner, showBanner, ui } from './ui.js'

interface ConversationView {
  peer: string
  unread: number
  online: boolean
  typing: boolean
  /** The highest mids of ours the peer has received, and read ("0": none known). */
  delivered: string
  read: string
  last: { text: string; ts: number; mine: boolean } | null
}

/** Without live presence, online flags come from REST: re-read this often. */
const POLL_MS = 10_000
/** After traffic, the list is re-read from REST once things settle: the server's counts win. */
const SETTLE_MS = 300
/** Near the top of the thread by this much: fetch the older page. */
const SCROLL_LOAD_PX = 40
/** Retry fast at first and never wait long: a restarted server is usually back within seconds. */
const RECONNECT = { initialDelayMs: 250, factor: 1.5, maxDelayMs: 5000, jitter: 0.3 }
/** How long a hint (not a problem) stays up. */
const HINT_MS = 6000
/** The composer shows its count once the text is this close to the limit. */
const COUNT_FROM = 0.8

interface Session {
  uid: string
  token: string | undefined
  client: DuetClient
  /** Re-reads the list for online dots while the server has no live presence. */
  poll: ReturnType<typeof setInterval> | undefined
  /** A newer tab or device took the uid: this tab stays closed until the user takes it back. */
  replaced: boolean
}

let session: Session | null = null
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
  const client = new DuetClient({ url, uid, features: FEATURES, reconnect: RECONNECT, ...(token === undefined ? {} : { token }) })
  const current: Session = { uid, token, client, poll: undefined, replaced: false }
  session = current
  ui.login.hidden = true
  ui.chat.hidden = false
  ui.me.textContent = uid
  ui.me.title = uid
  client.on('state', showState)
  client.on('message', receive)
  client.on('error', showError)
  client.on('receipt', receiptCame)
  client.on('typing', typingChanged)
  client.on('presence', presenceChanged)
  client.on('bound', (info) => {
    hideBanner() // whatever went wrong before, the connection is back
    if (info.maxMessageLength !== undefined) {
      limits.maxMessageLength = info.maxMessageLength
      updateComposer()
    }
    followPresence(current)
    // After a reconnect the list may be stale; after a reset the thread is too.
    void refreshConversations()
    if (info.reset && thread !== null) void reopen(thread.peer)
  })
  updateComposer()
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
  clearInterval(session.poll)
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

/** Live dots from presence events when the server accepted them; otherwise from polling the list. */
function followPresence(current: Session): void {
  if (current.client.features.has('presence')) {
    clearInterval(current.poll)
    current.poll = undefined
    for (const peer of conversations.keys()) current.client.watch(peer)
  } else if (current.poll === undefined) {
    // Not while disconnected: the dots are grey then, and the server may well be down too.
    current.poll = setInterval(() => {
      if (current.client.state === 'bound') void refreshConversations()
    }, POLL_MS)
  }
}

function showState(state: ConnectionState): void {
  ui.status.textContent = session?.replaced === true ? 'open in another tab' : STATE_LABEL[state]
  ui.status.className = `status ${state}`
  ui.retry.hidden = state !== 'reconnecting'
  if (state !== 'bound') {
    // Disconnected, the page knows nobody's presence: grey dots until the server says again.
    for (const view of conversations.values()) Object.assign(view, { online: false, typing: false })
    renderConversations()
  }
  updateComposer()
}

function showError(error: DuetError): void {
  const current = session
  if (error.code === Code.REPLACED) {
    if (current !== null) current.replaced = true
    showBanner('This uid was opened in another tab or device: this tab no longer sends or receives.', {
      action: 'Use it here',
      onAction: () => {
        if (session !== current || current === null) return
        stop()
        void start(current.uid, current.token)
      },
    })
  } else if (error.code === Code.AUTH_FAILED) {
    stop()
    showBanner(`Sign-in refused: ${error.message}`)
  } else if (error.code === Code.SHUTTING_DOWN) {
    // The server is restarting: the status says "reconnecting…", and the client is on it.
  } else {
    showBanner(`${error.code}: ${error.message}`)
  }
}

/** Retry now, rather than when the backoff says: asked for, or the network or the tab is back. */
function reconnectNow(): void {
  session?.client.reconnectNow()
}

// ---- conversations ----

function conversation(peer: string): ConversationView {
  let view = conversations.get(peer)
  if (view === undefined) {
    conversations.set(peer, (view = { peer, unread: 0, online: false, typing: false, delivered: '0', read: '0', last: null }))
    // Kept by the client and sent once the server has accepted presence.
    session?.client.watch(peer)
  }
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
  showConversations(page.conversations, current)
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
  showConversations(page.conversations, current)
}

function listFailed(err: Error): undefined {
  showBanner(`Could not load conversations: ${err.message}`)
  return undefined
}

/** The receipt marks a list entry carries once the server has receipts ("0" when none). */
type ConversationWithMarks = Conversation & { peerDelivered?: unknown; peerRead?: unknown }

function showConversations(list: Conversation[], current: Session): void {
  const { client } = current
  for (const c of list as ConversationWithMarks[]) {
    const view = conversation(c.peer)
    view.unread = c.unread
    // With live presence the events are newer than any list; disconnected, nobody is known online.
    if (!client.features.has('presence')) view.online = c.online && client.state === 'bound'
    if (typeof c.peerDelivered === 'string') raiseMark(view, 'delivered', c.peerDelivered)
    if (typeof c.peerRead === 'string') raiseMark(view, 'read', c.peerRead)
    const text = c.lastMessage.truncated ? `${c.lastMessage.msg}…` : c.lastMessage.msg
    view.last = { text, ts: c.lastMessage.ts, mine: c.lastMessage.from === current.uid }
  }
  renderConversations()
  if (thread !== null) renderThread()
}

/** Receipts are high-water marks: they only go up, and read implies delivered. */
function raiseMark(view: ConversationView, status: 'delivered' | 'read', mid: string): void {
  if (midAfter(mid, view[status])) view[status] = mid
  if (status === 'read' && midAfter(mid, view.delivered)) view.delivered = mid
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
      button.title = view.peer
      button.setAttribute('aria-current', String(open))
      button.append(presenceDot(view), el('span', 'peer', view.peer))
      if (unread > 0) button.append(el('span', 'badge', String(unread)))
      else button.append(el('span'))
      if (view.typing) button.append(el('span', 'preview typing', 'typing…'))
      else button.append(el('span', 'preview', view.last === null ? 'no messages yet' : `${view.last.mine ? 'you: ' : ''}${view.last.text}`))
      button.addEventListener('click', () => void openConversation(view.peer))
      item.append(button)
      return item
    }),
  )
  const peer = thread === null ? undefined : conversations.get(thread.peer)
  showPresence(ui.peerDot, peer)
  ui.peerTyping.hidden = peer?.typing !== true
}

function presenceDot(view: ConversationView): HTMLSpanElement {
  return showPresence(el('span'), view)
}

function showPresence(dot: HTMLElement, view: ConversationView | undefined): HTMLElement {
  const online = view?.online === true
  dot.className = online ? 'dot online' : 'dot'
  dot.title = view === undefined ? '' : online ? 'online' : 'offline'
  return dot
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
  ui.peerName.title = peer
  ui.closeThread.hidden = false
  ui.composer.hidden = false
  renderConversations()
  renderThread()
  try {
    await current.client.join(peer)
  } catch (err) {
    if (session === current && !current.replaced) showBanner(`Could not open the conversation: ${(err as Error).message}`)
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
  ui.peerName.title = ''
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
  const marks = thread === null ? undefined : conversations.get(thread.peer)
  const receipts = session?.client.features.has('receipts') === true ? marks : undefined
  ui.older.hidden = thread === null || thread.nextBefore === null || thread.nextBefore === undefined
  ui.messages.replaceChildren(
    ...(thread?.list() ?? []).map((m) => {
      const mine = m.from === uid
      const item = el('li', `message ${mine ? 'mine' : 'theirs'} ${m.status}`)
      item.dataset.key = m.key
      if (m.mid !== null) item.dataset.mid = m.mid
      item.append(el('span', 'text', m.text))
      if (m.status === 'failed') {
        item.append(failureControls(m))
        return item
      }
      const meta = el('span', 'meta')
      meta.append(el('time', '', m.status === 'pending' ? 'sending…' : timeLabel(m.ts)))
      if (mine && m.mid !== null && receipts !== undefined) meta.append(...ticks(m.mid, receipts))
      item.append(meta)
      return item
    }),
  )
  if (scroll === 'bottom' || (scroll === 'auto' && atBottom)) scroller.scrollTop = scroller.scrollHeight
  else if (scroll === 'keep') scroller.scrollTop = scroller.scrollHeight - fromBottom
}

/** One tick once the peer's connection has it, two once they read it. */
function ticks(mid: string, marks: ConversationView): HTMLElement[] {
  const [text, label] = !midAfter(mid, marks.read) ? ['✓✓', 'read'] : !midAfter(mid, marks.delivered) ? ['✓', 'delivered'] : [null, '']
  if (text === null) return []
  const tick = el('span', `ticks ${label}`, text)
  tick.title = label
  tick.setAttribute('aria-label', label)
  return [tick]
}

/** Why it was not sent, and what can be done: retry (or edit, when the text itself was refused), or delete. */
function failureControls(m: ThreadMessage): HTMLElement {
  const box = el('span', 'meta failure')
  box.append(el('span', 'reason', `Not sent: ${m.reason ?? 'unknown error'}`))
  const again = el('button', 'link', m.retry === true ? 'Retry' : 'Edit')
  again.type = 'button'
  again.addEventListener('click', () => (m.retry === true ? retrySend(m.key) : editFailed(m.key)))
  const remove = el('button', 'link', 'Delete')
  remove.type = 'button'
  remove.addEventListener('click', () => {
    thread?.remove(m.key)
    renderThread()
  })
  box.append(again, remove)
  return box
}

function receive(message: ChatMessage): void {
  // A carbon (own) is ours, from another tab: it belongs to the conversation with its recipient.
  const peer = message.own ? message.to : message.from
  const view = conversation(peer)
  view.last = { text: message.text, ts: message.ts, mine: message.own }
  if (thread?.peer === peer) {
    thread.addStored({ mid: message.mid, from: message.from, text: message.text, ts: message.ts })
    renderThread()
  } else if (!message.own) {
    view.unread++
  }
  renderConversations()
  refreshSoon()
}

function receiptCame(receipt: Receipt): void {
  raiseMark(conversation(receipt.peer), receipt.status, receipt.mid)
  if (thread?.peer === receipt.peer) renderThread()
}

function typingChanged(event: TypingEvent): void {
  const view = conversations.get(event.peer)
  if (view === undefined) return
  view.typing = event.typing
  renderConversations()
}

function presenceChanged(event: PresenceEvent): void {
  conversation(event.peer).online = event.online
  renderConversations()
}

async function sendMessage(text: string): Promise<void> {
  const current = session
  const target = thread
  if (current === null || target === null) return
  const key = target.addPending(current.uid, text)
  renderThread('bottom')
  await deliver(current, target, key)
}

/** Sends a pending message of `target`; the list shows it as "you: …" only once it is stored. */
async function deliver(current: Session, target: Thread, key: string): Promise<void> {
  const text = target.get(key)?.text
  if (text === undefined) return
  try {
    const mid = await current.client.send(target.peer, text)
    target.acked(key, mid, Date.now())
    if (session === current) {
      conversation(target.peer).last = { text, ts: Date.now(), mine: true }
      renderConversations()
      refreshSoon()
    }
  } catch (err) {
    const failure = sendFailure(err as DuetError, current.replaced)
    target.failed(key, failure.reason, failure.retry)
    updateComposer() // a 413 may have taught the page a lower limit
  }
  if (thread === target) renderThread()
}

function retrySend(key: string): void {
  const current = session
  const target = thread
  if (current === null || target === null) return
  target.retrying(key)
  renderThread()
  void deliver(current, target, key)
}

/** A text the server refused goes back to the composer, where its length shows. */
function editFailed(key: string): void {
  const item = thread?.get(key)
  if (thread === null || item === undefined) return
  thread.remove(key)
  ui.text.value = item.text
  updateComposer()
  renderThread()
  ui.text.focus()
}

/** Send is possible when connected (or reconnecting: the client queues) and the text fits. */
function updateComposer(): void {
  const usable = session !== null && session.client.state !== 'closed'
  const text = ui.text.value
  const length = textLength(text)
  const max = limits.maxMessageLength
  const over = length > max
  ui.text.disabled = !usable
  ui.text.placeholder = usable ? 'Message' : session?.replaced === true ? 'Open in another tab' : 'Not connected'
  ui.send.disabled = !usable || over || text.trim() === ''
  ui.count.hidden = length < max * COUNT_FROM
  ui.count.value = over ? `${length} / ${max}: too long` : `${length} / ${max}`
  ui.composer.classList.toggle('over', over)
  ui.text.setAttribute('aria-invalid', String(over))
}

// ---- wiring ----

ui.loginForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const uid = ui.uid.value.trim()
  const token = ui.token.value.trim()
  if (uid !== '') void start(uid, token === '' ? undefined : token)
})
ui.logout.addEventListener('click', stop)
ui.retry.addEventListener('click', reconnectNow)
window.addEventListener('online', reconnectNow)
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') reconnectNow()
})
ui.newForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const peer = ui.newPeer.value.trim()
  if (peer === '' || session === null) return
  if (peer === session.uid) {
    showBanner('That is you: pick another uid.', { hideAfterMs: HINT_MS })
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
  // The server refuses an empty text, and one over the limit: neither is sent.
  if (text.trim() === '' || textLength(text) > limits.maxMessageLength || session === null || session.client.state === 'closed') return
  ui.text.value = ''
  updateComposer()
  void sendMessage(text)
})
ui.text.addEventListener('input', () => {
  updateComposer()
  if (thread !== null && ui.text.value !== '') session?.client.sendTyping(thread.peer)
})
ui.older.addEventListener('click', () => {
  if (thread !== null) void loadOlder(thread)
})
ui.scroller.addEventListener('scroll', () => {
  if (thread !== null && ui.scroller.scrollTop < SCROLL_LOAD_PX && thread.nextBefore) void loadOlder(thread)
})

const remembered = sessionStorage.getItem('duet.uid')
if (remembered !== null) void start(remembered, sessionStorage.getItem('duet.token') ?? undefined)
