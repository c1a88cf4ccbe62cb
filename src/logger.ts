// The slice of pino the core logs through; Fastify's logger satisfies it.
import type { BaseLogger } from 'pino'

export type Logger = Pick<BaseLogger, 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'>
