/**
 * The command timeout of the Redis store, measured so that a stall of this process's own event loop
 * is never taken for an absent Redis (issue 18 item 2).
 *
 * ioredis' own `commandTimeout` starts a timer per command. When the event loop is blocked past it
 * (a multi-second synchronous task), Node runs expired timers before it reads the sockets (the
 * timers phase comes before the poll phase: nodejs.org "The Node.js Event Loop"), so every command in
 * flight fails as "timed out" although its answer has been waiting in the socket since long before:
 * the replica declared Redis unreachable seven times in 40 s that way. Here, instead:
 * - when a deadline passes, the verdict waits for `setImmediate`, which runs after the poll phase,
 *   so answers that arrived during a stall are read first;
 * - a check that runs late (the loop was blocked) gives every command in flight a fresh full timeout
 *   from now instead of a verdict: a command fails only after it went unanswered for the whole
 *   timeout while this process was free to read its answer.
 * - while answers keep arriving to commands sent before it, Redis is alive and busy, not absent: a
 *   burst of our own (every session re-written after an outage, 20,000 of them) is answered in
 *   order, and its last commands may wait longer than the timeout. Such a command waits up to
 *   `maxWaitMs` (default 4 timeouts) before it fails, so a burst never turns into a
 *   degrade-recover loop. (Answers to commands sent after it do not count: on one connection Redis
 *   answers in order, so those came from another connection, e.g. another node of a Cluster.)
 * A hung or absent Redis (no answer at all) is still found within one timeout of a responsive loop,
 * and after at most MAX_FORGIVEN stalls in a row; a hung node of a Cluster whose other nodes keep
 * answering, within `maxWaitMs`.
 *
 * One timer for all commands in flight, armed for the earliest deadline, not one per command.
 */

/** What a command that timed out rejects with (the message ioredis uses, which logs and tests know). */
export class CommandTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Command timed out (no answer within ${timeoutMs} ms of a responsive event loop)`);
    this.name = 'CommandTimeoutError';
  }
}

interface InFlight {
  /** When it was sent (orders commands: on one connection Redis answers in that order). */
  readonly start: number;
  /** Since when it has waited with the loop free (`start`, or the end of the last stall forgiven). */
  waitFrom: number;
  deadline: number;
  /** Stalls this command was given a fresh timeout for. */
  forgiven: number;
  readonly reject: (err: Error) => void;
}

/**
 * A command still unanswered after this many stalls, each followed by a poll of the sockets, had its
 * answer long enough: it is judged at its next deadline even if that check is late too, so a
 * process that lags all the time still finds a hung Redis.
 */
const MAX_FORGIVEN = 3;

export interface CommandDeadlineOptions {
  readonly timeoutMs: number;
  /** A check this much later than planned means the loop was blocked (default: half the timeout, at least 50 ms). */
  readonly stallMs?: number;
  /** The longest a command waits while other commands are being answered (default 4 × timeoutMs). */
  readonly maxWaitMs?: number;
  /** Monotonic ms (default `performance.now`). */
  readonly now?: () => number;
}

export class CommandDeadline {
  readonly timeoutMs: number;
  private readonly stallMs: number;
  private readonly now: () => number;
  private readonly maxWaitMs: number;
  private readonly inFlight = new Map<number, InFlight>();
  /** When a command last got its answer (or its error), and when that command had started. */
  private lastAnswer = -Infinity;
  private lastAnsweredStart = -Infinity;
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer should fire. */
  private plannedAt = 0;
  /** How many times a late check gave the commands in flight a fresh timeout (for tests and logs). */
  stallsForgiven = 0;

  constructor(opts: CommandDeadlineOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.stallMs = opts.stallMs ?? Math.max(50, opts.timeoutMs / 2);
    this.maxWaitMs = opts.maxWaitMs ?? 4 * opts.timeoutMs;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Commands waiting for an answer now. */
  get pending(): number {
    return this.inFlight.size;
  }

  /**
   * Settles as `command` does, or rejects with `CommandTimeoutError` once it has gone unanswered for
   * the timeout while the event loop was free to read the answer.
   */
  track<T>(command: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      const start = this.now();
      this.inFlight.set(id, { start, waitFrom: start, deadline: start + this.timeoutMs, forgiven: 0, reject });
      command.then(
        (value) => {
          this.answered(id);
          resolve(value);
        },
        (err: unknown) => {
          this.answered(id);
          reject(err);
        },
      );
      // Every deadline set later is at least this one, so an armed timer is never too late for it.
      if (this.timer === undefined) this.arm(start + this.timeoutMs);
    });
  }

  /** Stops the timer (the commands in flight are left to their own fate). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private answered(id: number): void {
    const c = this.inFlight.get(id);
    if (c === undefined) return;
    this.inFlight.delete(id);
    this.lastAnswer = this.now();
    this.lastAnsweredStart = c.start;
  }

  private arm(at: number): void {
    this.plannedAt = at;
    this.timer = setTimeout(() => setImmediate(() => this.check()), Math.max(0, at - this.now()));
    // A pending command keeps nothing alive on its own account: the socket does that.
    this.timer.unref();
  }

  private check(): void {
    this.timer = undefined;
    const now = this.now();
    const stalled = now - this.plannedAt > this.stallMs;
    if (stalled) this.stallsForgiven++;
    const flowingSince = now - this.lastAnswer < this.timeoutMs ? this.lastAnsweredStart : Infinity;
    let next = Infinity;
    for (const [id, c] of this.inFlight) {
      if (c.deadline <= now) {
        if (stalled && c.forgiven < MAX_FORGIVEN) {
          // The loop was blocked: this command has not had its timeout of a loop free to read answers.
          c.forgiven++;
          c.waitFrom = now;
          c.deadline = now + this.timeoutMs;
        } else if (flowingSince <= c.start && now - c.waitFrom < this.maxWaitMs) {
          // Answers are arriving: Redis is busy with what was sent before this, not gone.
          c.deadline = Math.min(this.lastAnswer + this.timeoutMs, c.waitFrom + this.maxWaitMs);
        } else {
          this.inFlight.delete(id);
          c.reject(new CommandTimeoutError(this.timeoutMs));
          continue;
        }
      }
      if (c.deadline < next) next = c.deadline;
    }
    if (next !== Infinity) this.arm(next);
  }
}
