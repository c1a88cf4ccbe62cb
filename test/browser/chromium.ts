// What the browser tests share: Debian's Chromium through playwright-core, a tab signed in as
// a user, screenshots, and the page errors every test checks at its end.
import { existsSync } from 'node:fs'
import { copyFile, mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { WEB_ROOT } from '../../plugins/static.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const ARTIFACTS = `${ROOT}artifacts/screenshots/`
const DOCS_SCREENSHOTS = `${ROOT}docs/screenshots/`
export const VIEWPORT = { width: 880, height: 520 }

if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`)
if (!existsSync(`${WEB_ROOT}app.js`)) throw new Error('the page is not built: npm run build')

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Uncaught exceptions and console errors of every page, checked at the end of each test. */
export const problems: string[] = []

export async function launch(t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
  t.teardown(() => browser.close())
  return browser
}

/** A new tab, signed in as `uid` and bound. */
export async function signIn(context: BrowserContext, url: string, uid: string): Promise<Page> {
  const page = await context.newPage()
  page.on('pageerror', (err) => problems.push(`${uid}: ${err.message}`))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`${uid}: ${msg.text()}`)
  })
  await page.goto(url)
  await page.fill('#uid', uid)
  await page.click('#login-form button[type=submit]')
  await page.locator('#status.bound').waitFor()
  return page
}

/** Opens the conversation with `peer` from "Chat with uid…". */
export async function startConversation(page: Page, peer: string): Promise<void> {
  await page.fill('#new-peer', peer)
  await page.press('#new-peer', 'Enter')
  await page.locator('#peer-name', { hasText: peer }).waitFor()
}

export const badge = (page: Page, peer: string) => page.locator(`#conversations li[data-peer="${peer}"] .badge`)
export const message = (page: Page, text: string | RegExp) => page.locator('#messages li .text', { hasText: text })
export const dot = (page: Page, peer: string) => page.locator(`#conversations li[data-peer="${peer}"] .dot`)

/** Sends `text` from the composer and waits for the server's ack. */
export async function send(page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
  await page.locator('#messages li.mine.sent .text', { hasText: text }).waitFor()
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true })
  const path = `${ARTIFACTS}${name}.png`
  await page.screenshot({ path })
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    await mkdir(DOCS_SCREENSHOTS, { recursive: true })
    await copyFile(path, `${DOCS_SCREENSHOTS}${name}.png`)
  }
  return path
}
