// Runs the built server (dist/server.js) as a child process, for tests that kill it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('../../server.js', import.meta.url))

// A test process that dies early (a timeout) must not leave servers running.
const children = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

export interface ServerProcess {
  child: ChildProcess
  url: string
  wsUrl: string
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Every log line the server wrote on stdout, parsed. */
  logs: Array<Record<string, unknown>>
}

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface ServerProcessOptions {
  /**
   * The process's open-file limit (`ulimit -n`) once it listens, for tests that exhaust it.
   * Set after the start: under tap, the child loads its modules through loader hooks that
   * open many files at once, and a start under 128 descriptors failed with EMFILE now and then.
   */
  openFiles?: number
}

/** Starts the server on a free port and resolves once it listens. */
export async function startServer(t: Teardown, env: Record<string, string>, options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.add(child)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child)
      resolve({ code, signal })
    }),
  )
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })
  const logs: Array<Record<string, unknown>> = []
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line) as Record<string, unknown>
      } catch {
        return
      }
      logs.push(entry)
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(String(entry.msg))
      if (match) resolve(match[1]!)
    })
  })
  if (options.openFiles !== undefined) execFileSync('prlimit', ['--pid', String(child.pid), `--nofile=${options.openFiles}:${options.openFiles}`])
  return { child, url, wsUrl: `${url.replace('http', 'ws')}/ws`, exited, logs }
}
