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
  logout: byId('logout'),
  newForm: byId<HTMLFormElement>('new-form'),
  newPeer: byId<HTMLInputElement>('new-peer'),
  conversations: byId('conversations'),
  moreConversations: byId<HTMLButtonElement>('more-conversations'),
  noConversations: byId('no-conversations'),
  peerDot: byId('peer-dot'),
  peerName: byId('peer-name'),
  closeThread: byId('close-thread'),
  scroller: byId('scroller'),
  older: byId('older'),
  messages: byId('messages'),
  composer: byId<HTMLFormElement>('composer'),
  text: byId<HTMLInputElement>('text'),
  banner: byId('banner'),
  bannerText: byId('banner-text'),
  bannerAction: byId<HTMLButtonElement>('banner-action'),
}

/** Shows `text` in the banner, with an optional action button that hides it and runs `onAction`. */
export function showBanner(text: string, action?: string, onAction?: () => void): void {
  ui.bannerText.textContent = text
  ui.bannerAction.hidden = action === undefined
  ui.bannerAction.textContent = action ?? ''
  ui.bannerAction.onclick = () => {
    hideBanner()
    onAction?.()
  }
  ui.banner.hidden = false
}

export function hideBanner(): void {
  ui.banner.hidden = true
}
