// Options of the bench scripts: KEY=VALUE or --key=value arguments, else the environment.

function readArgs(argv: string[]): Map<string, string> {
  const m = new Map<string, string>()
  for (const a of argv) {
    const match = /^(?:--)?([A-Za-z][A-Za-z0-9_-]*)=(.*)$/.exec(a)
    if (match === null) throw new Error(`bad argument ${JSON.stringify(a)}: use KEY=VALUE or --key=value`)
    m.set(match[1]!.toUpperCase().replace(/-/g, '_'), match[2]!)
  }
  return m
}

const ARGS = readArgs(process.argv.slice(2))

export const opt = (name: string): string | undefined => ARGS.get(name) ?? process.env[name]

export function num(name: string, def: number): number {
  const v = opt(name)
  if (v === undefined || v === '') return def
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`)
  return n
}

export function bool(name: string, def: boolean): boolean {
  const v = opt(name)
  if (v === undefined || v === '') return def
  return !['0', 'false', 'no', 'off'].includes(v.toLowerCase())
}

export function list(name: string): string[] | undefined {
  const v = opt(name)
  if (v === undefined || v.trim() === '') return undefined
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '')
}
