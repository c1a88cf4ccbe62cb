// The page's elements, looked up once, and the banner that reports what went wrong.
import { byId } from './dom.js'

export const ui = {
  login: byId('login'),
  loginForm: byId<HTMLFormElement>('login-form'),
  uid: byId<HTMLInputElement>('uid'),
  token: byId<HTMLInputElement>('token'),
  chat: byId('chat'),
  me: byId('me'),
  status: byId('status'),
  retry: byId<HTMLButtonElement>('retry'),
  logout: byId('logout'),
  newForm: byId<HTMLFormElement>('new-form'),
  newPeer: byId<HTMLInputElement>('new-peer'),
  conversations: byId('conversations'),
  moreConversations: byId<HTMLButtonElement>('more-conversations'),
  noConversations: byId('no-conversations'),
  peerDot: byId('peer-dot'),
  peerName: byId('peer-name'),
  peerTyping: byId('peer-typing'),
  closeThread: byId('close-thread'),
  scroller: byId('scroller'),
  older: byId('older'),
  messages: byId('messages'),
  composer: byId<HTMLFormElement>('composer'),
  text: byId<HTMLInputElement>('text'),
  count: byId<HTMLOutputElement>('count'),
  send: byId<HTMLButtonElement>('send'),
  banner: byId('banner'),
  bannerText: byId('banner-text'),
  bannerAction: byId<HTMLButtonElement>('banner-action'),
  bannerClose: byId<HTMLButtonElement>('banner-close'),
}

export interface BannerOptions {
  /** A button that hides the banner and runs `onAction`. */
  action?: string
  onAction?: () => void
  /** Hides itself after this long (a hint), instead of staying until closed (a problem). */
  hideAfterMs?: number
}

let hideTimer: ReturnType<typeof setTimeout> | undefined

/** Shows `text` in the banner; it always has a close button. */
export function showBanner(text: string, options: BannerOptions = {}): void {
  clearTimeout(hideTimer)
  ui.bannerText.textContent = text
  ui.bannerAction.hidden = options.action === undefined
  ui.bannerAction.textContent = options.action ?? ''
  ui.bannerAction.onclick = () => {
    hideBanner()
    options.onAction?.()
  }
  ui.banner.hidden = false
  if (options.hideAfterMs !== undefined) hideTimer = setTimeout(hideBanner, options.hideAfterMs)
}

export function hideBanner(): void {
  clearTimeout(hideTimer)
  ui.banner.hidden = true
}

ui.bannerClose.addEventListener('click', hideBanner)
