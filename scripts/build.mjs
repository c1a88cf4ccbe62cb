// Builds dist/: the TypeScript (incremental: only what changed is checked and emitted again) and
// the demo page's bundle. With --if-stale (`npm start`) it builds only when an input changed
// since the last build, so a built tree starts at once. Plain JavaScript: it runs before anything
// is compiled.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import process from 'node:process'

const STAMP = 'dist/.build-stamp'
/** What `npm start` needs: their absence means dist/ was cleared in part. */
const OUTPUTS = ['dist/server.js', 'dist/web/index.html']

/** The newest modification time (ms) of a file, or of a folder and all it holds (a deletion changes its folder). */
function newest(path) {
  const stat = statSync(path, { throwIfNoEntry: false })
  if (stat === undefined) return 0
  if (!stat.isDirectory()) return stat.mtimeMs
  let time = stat.mtimeMs
  for (const entry of readdirSync(path)) time = Math.max(time, newest(`${path}/${entry}`))
  return time
}

/** The sources tsconfig.json compiles, plus what decides how they are built. */
function inputs() {
  const { include } = JSON.parse(readFileSync('tsconfig.json', 'utf8'))
  return [...include, 'tsconfig.json', 'package.json', 'package-lock.json']
}

function upToDate() {
  if (!OUTPUTS.every((path) => existsSync(path))) return false
  const built = statSync(STAMP, { throwIfNoEntry: false })?.mtimeMs ?? 0
  return inputs().every((path) => newest(path) <= built)
}

function run(script) {
  const { status } = spawnSync('npm', ['run', '--silent', script], { stdio: 'inherit' })
  if (status !== 0) process.exit(status ?? 1)
}

if (process.argv.includes('--if-stale') && upToDate()) process.exit(0)
// Stamped with the time the build began: a file saved while it runs is newer, and builds next time.
const began = new Date()
run('build:ts')
run('build:web')
writeFileSync(STAMP, `built from the sources as they were at ${began.toISOString()}\n`)
utimesSync(STAMP, began, began)
