// The slice of a pino/Fastify logger the stores use, so the core does not depend on either.
export interface StoreLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}
