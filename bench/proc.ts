// Process plumbing shared by the bench drivers (run.ts, scale.ts, cluster.ts): servers started
// pinned and with a raised open-file limit, their CPU time, memory and descriptors read from
// /proc, and the load generators run as children.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** The repository root (this file runs as dist/bench/proc.js). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

// ---------------------------------------------------------------------------------------------
// /proc

export let clkTck = 100
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
} catch {
  // keep 100
}

/** user+system CPU seconds of the process (all its threads), or undefined without /proc */
export function procCpuSec(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (Number(fields[11]) + Number(fields[12])) / clkTck
  } catch {
    return undefined
  }
}

/** busy CPU seconds of the whole machine (all cores), from the first line of /proc/stat */
export function systemBusySec(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal ...
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / clkTck
  } catch {
    return undefined
  }
}

/** VmRSS and VmHWM in MB */
export function procMem(pid: number): { rssMB: number; hwmMB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN)
    return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 }
  } catch {
    return undefined
  }
}

/** Moves the driver itself to `cpu` (the load generator's), off the cores it measures; not fatal. */
export function pinSelf(cpu: number): void {
  try {
    execFileSync('taskset', ['-pc', String(cpu), String(process.pid)], { stdio: 'ignore' })
  } catch {
    // not fatal
  }
}

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** The open-file limit a child gets through withFileLimit (the soft limit raised as far as allowed). */
export function openFileLimit(): number | undefined {
  try {
    const v = execFileSync('bash', ['-c', `${RAISE_FILE_LIMIT}; ulimit -n`], { encoding: 'utf8' }).trim()
    return v === 'unlimited' ? Infinity : Number(v)
  } catch {
    return undefined
  }
}

// Thousands of sockets need as many descriptors: children start with the soft limit raised to
// 65536, or to the hard limit when that is lower (raising the hard limit needs privileges).
const RAISE_FILE_LIMIT = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null'

/** Runs cmd through bash with the open-file limit raised (see RAISE_FILE_LIMIT). */
export function withFileLimit(cmd: string, args: string[]): [string, string[]] {
  return ['bash', ['-c', `${RAISE_FILE_LIMIT}; exec "$@"`, 'bash', cmd, ...args]]
}

/** Descriptors the process has open, or undefined without /proc. */
export function openFiles(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// processes

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' })
    const done = (ok: boolean): void => {
      s.destroy()
      resolve(ok)
    }
    s.setTimeout(500, () => done(false))
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}

/** keeps the last `max` characters written to a stream */
export class Tail {
  private text = ''
  constructor(private readonly max = 4000) {}
  push(chunk: Buffer | string): void {
    this.text = (this.text + String(chunk)).slice(-this.max)
  }
  toString(): string {
    return this.text.trim()
  }
}

export interface Pinning {
  server: string[]
  load: string[]
}

export function pinned(cmd: string, args: string[], cpu: string[]): [string, string[]] {
  return cpu.length === 0 ? [cmd, args] : ['taskset', [...cpu, cmd, ...args]]
}

/**
 * A load generator (load.ts, cluster-load.ts) run as a child: its events come as JSON lines on
 * stdout; its stderr is passed through and its end kept for the error message.
 */
export class LoadProcess<Event> {
  readonly child: ChildProcess
  readonly stderr = new Tail(2000)

  constructor(cmd: string, args: string[], stdin: 'pipe' | 'ignore') {
    this.child = spawn(cmd, args, { cwd: ROOT, stdio: [stdin, 'pipe', 'pipe'] })
    this.child.stderr?.on('data', (c: Buffer) => {
      this.stderr.push(c)
      process.stderr.write(c)
    })
  }

  /** `onEvent` gets every event as it arrives: the driver samples /proc on some of them. */
  onEvents(onEvent: (ev: Event) => void): void {
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let ev: Event
      try {
        ev = JSON.parse(line) as Event
      } catch {
        process.stderr.write(`load: ${line}\n`)
        return
      }
      onEvent(ev)
    })
  }

  /** Its exit code; after `budgetMs` it is killed, and `onKill` hears why. */
  exit(budgetMs: number, onKill: (why: string) => void): Promise<number | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        onKill(`load generator did not finish within ${Math.round(budgetMs / 1000)} s; killed`)
        this.child.kill('SIGKILL')
      }, budgetMs)
      this.child.on('close', (code) => {
        clearTimeout(timer)
        resolve(code)
      })
    })
  }
}

export interface RunningServer {
  proc: ChildProcess
  pid: number
  port: number
  dir: string
  output: Tail
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
}

export interface ServerSpec {
  name: string
  /** script to run with node, relative to the repo root (or absolute) */
  script: string
  /** env for the server; `dir` is a fresh temporary directory for this start */
  env: (port: number, dir: string) => Record<string, string>
  nodeArgs: string[]
  /** taskset arguments, or [] */
  pin: string[]
  startupTimeoutSec: number
}

/** Starts a server on a free port and waits until it accepts; a string says why it did not. */
export async function startServer(spec: ServerSpec): Promise<RunningServer | string> {
  const script = resolve(ROOT, spec.script)
  if (!existsSync(script)) return `${spec.script} not found (not built yet?)`
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), `duet-bench-${spec.name}-`))
  const [cmd, args] = withFileLimit(...pinned(process.execPath, [...spec.nodeArgs, script], spec.pin))
  const proc = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', ...spec.env(port, dir) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output = new Tail()
  proc.stdout?.on('data', (c: Buffer) => output.push(c))
  proc.stderr?.on('data', (c: Buffer) => output.push(c))
  const server: RunningServer = { proc, pid: proc.pid ?? -1, port, dir, output, exited: undefined }
  proc.on('exit', (code, signal) => {
    server.exited = { code, signal }
  })
  proc.on('error', (err) => {
    output.push(`spawn error: ${err.message}\n`)
    server.exited = { code: -1, signal: null }
  })
  const deadline = Date.now() + spec.startupTimeoutSec * 1000
  while (Date.now() < deadline) {
    if (server.exited !== undefined) break
    if (await canConnect(port)) return server
    await sleep(100)
  }
  const why =
    server.exited !== undefined
      ? `exited (code ${server.exited.code}, signal ${server.exited.signal}) before accepting on port ${port}`
      : `did not accept on port ${port} within ${spec.startupTimeoutSec} s`
  await stopServer(server)
  const out = output.toString()
  return `${why}${out === '' ? '' : `; its output ends with:\n${indent(out.slice(-1500))}`}`
}

export async function stopServer(s: RunningServer): Promise<void> {
  if (s.exited === undefined) {
    s.proc.kill('SIGTERM')
    for (let i = 0; i < 50 && s.exited === undefined; i++) await sleep(100)
    if (s.exited === undefined) {
      s.proc.kill('SIGKILL')
      for (let i = 0; i < 20 && s.exited === undefined; i++) await sleep(100)
    }
  }
  rmSync(s.dir, { recursive: true, force: true })
}

export function oneLine(s: string): string {
  const l = s.trim().replace(/\s*\n\s*/g, ' ⏎ ')
  return l.length > 400 ? `${l.slice(0, 400)}…` : l
}

export function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')
}

