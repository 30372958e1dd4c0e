/**
 * Log lines with a connection's or a session's context, costing nothing until a line is written.
 *
 * A pino child logger serializes its bindings into a string and makes a new instance (about
 * 1 KB per child, measured with a heap snapshot of 5,000 idle sessions), and most connections and
 * sessions never write a line at the configured level (`warn` in production; issue 18). So no
 * child is made at all: the level is checked first (`isLevelEnabled`), and only then are the
 * owner's context fields merged into the line. The fields land in the line exactly as a child's
 * bindings would, and pass the same redaction.
 */
import type { Logger } from './logger.js';

/** pino's levels that write a line. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** Something whose log lines carry its context (ids), read only when a line is written. */
export interface LogContext {
  /** A fresh object with the fields every line of this owner carries (e.g. `conn_id`, `session_id`). */
  logFields(): Record<string, unknown>;
}

/**
 * Writes `msg` at `level` with the owner's context fields and `fields` (which win on a clash);
 * does nothing, and allocates nothing, when the level is off.
 */
export function logWith(logger: Logger, level: LogLevel, owner: LogContext, msg: string, fields?: Record<string, unknown>): void {
  if (!logger.isLevelEnabled(level)) return;
  const context = owner.logFields();
  logger[level](fields === undefined ? context : Object.assign(context, fields), msg);
}

type LogArgs = [obj: unknown, msg?: string, ...args: unknown[]];

/**
 * fastify's per-request logger for routes that rarely log (route option `childLoggerFactory`):
 * fastify makes a pino child for every request (bindings serialized, redaction set up), and a
 * WebSocket upgrade that goes well writes no line at all. This one makes that child only when a
 * line at an enabled level is written, then hands every call to it. Its level is the route's
 * (`opts.level`), else the parent's, as a pino child's would be.
 */
export class LazyRequestLogger {
  private real: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Record<string, unknown>,
    private readonly opts: { level?: string },
  ) {}

  /** fastify's `childLoggerFactory`: a lazy child instead of a pino child per request. */
  static factory(this: void, parent: unknown, bindings: Record<string, unknown>, opts: { level?: string }): LazyRequestLogger {
    return new LazyRequestLogger(parent as Logger, bindings, opts);
  }

  get level(): string {
    return this.real?.level ?? this.opts.level ?? this.parent.level;
  }

  set level(level: string) {
    this.materialize().level = level;
  }

  isLevelEnabled(level: LogLevel): boolean {
    if (this.real) return this.real.isLevelEnabled(level);
    const own = this.opts.level;
    if (own === undefined) return this.parent.isLevelEnabled(level);
    const values = this.parent.levels.values;
    return (values[level] ?? 0) >= (values[own] ?? Infinity); // 'silent' has no number: nothing passes
  }

  fatal(...args: LogArgs): void {
    this.write('fatal', args);
  }
  error(...args: LogArgs): void {
    this.write('error', args);
  }
  warn(...args: LogArgs): void {
    this.write('warn', args);
  }
  info(...args: LogArgs): void {
    this.write('info', args);
  }
  debug(...args: LogArgs): void {
    this.write('debug', args);
  }
  trace(...args: LogArgs): void {
    this.write('trace', args);
  }
  silent(): void {}

  child(bindings: Record<string, unknown> = {}, opts?: Record<string, unknown>): Logger {
    return this.materialize().child(bindings, opts);
  }

  private write(level: LogLevel, args: LogArgs): void {
    if (!this.isLevelEnabled(level)) return;
    (this.materialize()[level] as (...a: LogArgs) => void)(...args);
  }

  private materialize(): Logger {
    this.real ??= this.parent.child(this.bindings, this.opts);
    return this.real;
  }
}
