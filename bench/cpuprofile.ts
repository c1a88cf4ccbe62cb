// Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. SERVER_NODE_ARGS="--cpu-prof
// --cpu-prof-dir=/tmp/prof" npm run bench): self time by function and by file or package,
// and total (inclusive) time of our own functions, so a profile reads without DevTools.
//   node dist/bench/cpuprofile.js <file.cpuprofile> [--top=30] [--filter=substring]
import { readFileSync } from 'node:fs'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

const args = process.argv.slice(2)
const file = args.find((a) => !a.startsWith('--'))
if (file === undefined) {
  console.error('usage: node dist/bench/cpuprofile.js <file.cpuprofile> [--top=30] [--filter=substring]')
  process.exit(2)
}
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const top = Number(flag('top') ?? 30)
const filter = flag('filter')

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

// Sample i lasted timeDeltas[i + 1] (the delta is recorded at the next sample).
const selfUs = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0
  selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + dt)
}
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0)

/** Where a frame comes from: a package, one of our files, node internals, or V8/native. */
function origin(cf: CallFrame): string {
  const url = cf.url
  if (url === '') return cf.functionName.startsWith('(') ? cf.functionName : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  if (url.startsWith('node:')) return url
  const ours = /\/dist\/(.+)$/.exec(url)
  return ours !== null ? ours[1]! : url
}
/** A function and where it is: file inside a package, or one of ours. */
function label(cf: CallFrame): string {
  const inPackage = /node_modules\/(.+)$/.exec(cf.url)
  const where = inPackage !== null ? inPackage[1]! : origin(cf)
  return `${cf.functionName || '(anonymous)'}  ${where}:${cf.lineNumber + 1}`
}

function addTo(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us)
}

const selfByFn = new Map<string, number>()
const selfByOrigin = new Map<string, number>()
const totalByFn = new Map<string, number>()
for (const [id, us] of selfUs) {
  const node = byId.get(id)!
  addTo(selfByFn, label(node.callFrame), us)
  addTo(selfByOrigin, origin(node.callFrame), us)
  // inclusive time: every distinct function on the stack gets the sample once
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const key = label(byId.get(cur)!.callFrame)
    if (seen.has(key)) continue
    seen.add(key)
    addTo(totalByFn, key, us)
  }
}

const pct = (us: number): string => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%`
function print(title: string, map: Map<string, number>, n: number, keep: (k: string) => boolean = () => true): void {
  console.log(`\n${title}`)
  const rows = [...map].filter(([k]) => keep(k)).sort((a, b) => b[1] - a[1]).slice(0, n)
  for (const [k, us] of rows) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`)
}

const idle = selfByFn.get(label({ functionName: '(idle)', url: '', lineNumber: -1 })) ?? 0
console.log(`${file}: ${(totalUs / 1e6).toFixed(2)} s sampled, ${pct(idle).trim()} idle`)
const keep = filter === undefined ? undefined : (k: string): boolean => k.includes(filter)
print('self time by file or package', selfByOrigin, top, keep)
print('self time by function', selfByFn, top, keep)
print('total time of our functions (dist/src, dist/routes, dist/plugins)', totalByFn, top, (k) =>
  /\s(src|routes|plugins)\//.test(k) && (keep === undefined || keep(k)),
)
