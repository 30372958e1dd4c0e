/**
 * The knobs of `npm run chaos` (command-line flags, parsed with node:util's parseArgs). Defaults
 * keep a full run to about four minutes on the 2-core CI machine.
 */
import { parseArgs } from 'node:util';

export const FAULTS = ['redis-kill', 'redis-pause', 'replica-kill'] as const;
export type FaultName = (typeof FAULTS)[number];

export interface ChaosOptions {
  /** Learners, each holding one session and doing about one `turn.text` a second. */
  readonly sessions: number;
  /** Steady load before the first fault. */
  readonly warmupSeconds: number;
  /** How long each fault is held, and how long the load runs steady after each recovery. */
  readonly secondsPerPhase: number;
  /** The account's `connectionsPerAccount` (default 1.5 × sessions: room for reconnects, not for the probe). */
  readonly cap: number;
  /** `store.leaseSeconds` of the replicas (the product's default: 30). */
  readonly leaseSeconds: number;
  /** Learners whose socket is cut during each fault (a network drop: they resume). */
  readonly drops: number;
  /** The SDK's `lostRequestTimeoutMs`, in seconds: silence after a resume that makes a request lost. */
  readonly lostAfterSeconds: number;
  /** Which faults to inject, in this order. */
  readonly faults: readonly FaultName[];
  /** Also write the report as JSON to this file. */
  readonly json: string | undefined;
  /** Print every replica warning line, not only a summary. */
  readonly verbose: boolean;
}

const USAGE = `npm run chaos -- [options]

  --sessions N             learners, one session each, a turn about every second (40)
  --warmup-seconds S       steady load before the first fault (20)
  --seconds-per-phase S    each fault is held S seconds, then S seconds of steady load (10)
  --cap N                  the account's connectionsPerAccount (1.5 x sessions)
  --lease-seconds S        store.leaseSeconds of the replicas (30, the product default)
  --drops N                learners whose socket is cut during each fault (3)
  --lost-after-seconds S   silence after a resume that makes a request lost (SDK lostRequestTimeoutMs; 20)
  --faults a,b,c           faults in order, from ${FAULTS.join(', ')} (all)
  --json FILE              also write the report as JSON
  --verbose                print every replica warning line
  --help`;

function positive(name: string, raw: string | undefined, fallback: number, integer = true): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
  }
  return n;
}

/** Parses argv (without node and the script); throws an Error naming the bad flag. Returns undefined for --help. */
export function parseOptions(argv: readonly string[]): ChaosOptions | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      sessions: { type: 'string' },
      'warmup-seconds': { type: 'string' },
      'seconds-per-phase': { type: 'string' },
      cap: { type: 'string' },
      'lease-seconds': { type: 'string' },
      drops: { type: 'string' },
      'lost-after-seconds': { type: 'string' },
      faults: { type: 'string' },
      json: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const sessions = positive('sessions', values.sessions, 40);
  const faults = values.faults === undefined ? [...FAULTS] : values.faults.split(',').map((f) => f.trim()).filter(Boolean);
  const unknown = faults.filter((f) => !(FAULTS as readonly string[]).includes(f));
  if (unknown.length > 0) throw new Error(`--faults: unknown fault(s) ${unknown.join(', ')}; the faults are ${FAULTS.join(', ')}`);
  const drops = values.drops === undefined ? 3 : Number(values.drops);
  if (!Number.isInteger(drops) || drops < 0 || drops > sessions) throw new Error(`--drops must be an integer from 0 to --sessions (${sessions}), got "${values.drops}"`);
  return {
    sessions,
    warmupSeconds: positive('warmup-seconds', values['warmup-seconds'], 20, false),
    secondsPerPhase: positive('seconds-per-phase', values['seconds-per-phase'], 10, false),
    cap: positive('cap', values.cap, Math.ceil(sessions * 1.5)),
    leaseSeconds: positive('lease-seconds', values['lease-seconds'], 30, false),
    drops,
    lostAfterSeconds: positive('lost-after-seconds', values['lost-after-seconds'], 20, false),
    faults: faults as FaultName[],
    json: values.json,
    verbose: values.verbose ?? false,
  };
}

export { USAGE };
