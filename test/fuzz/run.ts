/**
 * `npm run fuzz`: a bounded fuzz run of the real app over real sockets, while a control learner does
 * a turn every second. Prints the report; exits 1 when a promise is broken.
 *
 *   npm run fuzz -- --seed 7 --frames 100000      a full run (30 s later reading included)
 *   npm run fuzz -- --seed 7 --case 1234           one case of that seed, every step and answer
 */
import { parseArgs } from 'node:util';
import { killAppChildren } from './app-process.js';
import { formatReport, promises } from './report.js';
import { runFuzz } from './runner.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    frames: { type: 'string', default: '100000' },
    case: { type: 'string' },
    concurrency: { type: 'string', default: '24' },
    settle: { type: 'string', default: '30' },
    heartbeat: { type: 'string', default: '3' },
    slowloris: { type: 'string', default: '4' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  process.stdout.write(
    [
      'npm run fuzz -- [--seed N] [--frames N] [--case N] [--concurrency N] [--settle S] [--heartbeat S] [--slowloris S]',
      '  --seed N         the run seed (default: random, printed); the same seed sends the same inputs',
      '  --frames N       WebSocket frames to send in all (default 100000)',
      '  --case N         run only case N of the seed and print every step and answer',
      '  --concurrency N  attack connections at once (default 24)',
      '  --settle S       seconds between the "right after" and "later" memory readings (default 30; 0 skips memory)',
      '  --heartbeat S    the app\'s protocol ping interval (default 3)',
      '  --slowloris S    how long a slowloris socket drips before it is cut (default 4)',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const int = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`--${name} must be a whole number ≥ 0, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};

process.on('exit', killAppChildren);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

const seed = values.seed !== undefined ? int('seed', values.seed) : Math.floor(Math.random() * 2 ** 31);
const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
log(`fuzzing with seed ${seed}`);
const report = await runFuzz({
  seed,
  frames: int('frames', values.frames),
  concurrency: Math.max(1, int('concurrency', values.concurrency)),
  settleSeconds: int('settle', values.settle),
  heartbeatSeconds: Math.max(1, int('heartbeat', values.heartbeat)),
  slowlorisMs: 1000 * Math.max(1, int('slowloris', values.slowloris)),
  ...(values.case !== undefined ? { onlyCase: int('case', values.case) } : {}),
  log,
});
if (values.case !== undefined) {
  log(report.stats.unexpected === 0 && !report.crash ? 'case answered as the oracle allows' : 'case answered OUTSIDE the oracle');
  process.exit(report.stats.unexpected === 0 && !report.crash ? 0 : 1);
}
log('');
log(formatReport(report));
process.exit(promises(report).every((p) => p.ok) ? 0 : 1);
