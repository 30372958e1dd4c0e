/** Collects pino's JSON lines so tests can assert on log fields (STYLE.md §10). */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';

export interface LogSink {
  readonly logger: Logger;
  readonly lines: Record<string, unknown>[];
  readonly raw: string[];
  find(pred: (line: Record<string, unknown>) => boolean): Record<string, unknown> | undefined;
}

/**
 * A logger writing to memory. `secrets` turns on the logger's last line of defence (the line scrub
 * of configured secrets); tests of the redaction layers below it leave it off.
 */
export function logSink(level: 'debug' | 'info' | 'warn' = 'info', opts: { secrets?: readonly string[] } = {}): LogSink {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  const logger = createLogger({ level, destination: stream, ...(opts.secrets ? { secrets: opts.secrets } : {}) });
  return { logger, lines, raw, find: (pred) => lines.find(pred) };
}
