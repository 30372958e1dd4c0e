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
 * A hung or absent Redis is still found within one timeout of a responsive loop (and, on a loop that
 * lags at every check, after at most MAX_FORGIVEN fresh timeouts).
 *
 * One timer for all commands in flight (they start in order and share one timeout, so the oldest
 * deadline is the first), not one per command.
 */

/** What a command that timed out rejects with (the message ioredis uses, which logs and tests know). */
export class CommandTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Command timed out (no answer within ${timeoutMs} ms of a responsive event loop)`);
    this.name = 'CommandTimeoutError';
  }
}

interface InFlight {
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
  /** Monotonic ms (default `performance.now`). */
  readonly now?: () => number;
}

export class CommandDeadline {
  readonly timeoutMs: number;
  private readonly stallMs: number;
  private readonly now: () => number;
  /** In start order (a Map iterates in insertion order), so the first has the earliest deadline. */
  private readonly inFlight = new Map<number, InFlight>();
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer should fire. */
  private plannedAt = 0;
  /** How many times a late check gave the commands in flight a fresh timeout (for tests and logs). */
  stallsForgiven = 0;

  constructor(opts: CommandDeadlineOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.stallMs = opts.stallMs ?? Math.max(50, opts.timeoutMs / 2);
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
      this.inFlight.set(id, { deadline: this.now() + this.timeoutMs, forgiven: 0, reject });
      command.then(
        (value) => {
          this.inFlight.delete(id);
          resolve(value);
        },
        (err: unknown) => {
          this.inFlight.delete(id);
          reject(err);
        },
      );
      this.arm();
    });
  }

  /** Stops the timer (the commands in flight are left to their own fate). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    const first = this.inFlight.values().next();
    if (first.done) return;
    this.plannedAt = first.value.deadline;
    this.timer = setTimeout(() => setImmediate(() => this.check()), Math.max(0, this.plannedAt - this.now()));
    // A pending command keeps nothing alive on its own account: the socket does that.
    this.timer.unref();
  }

  private check(): void {
    this.timer = undefined;
    const now = this.now();
    const stalled = now - this.plannedAt > this.stallMs;
    if (stalled) this.stallsForgiven++;
    for (const [id, c] of this.inFlight) {
      if (c.deadline > now) break;
      if (stalled && c.forgiven < MAX_FORGIVEN) {
        // The loop was blocked: this command has not had its timeout of a loop free to read answers.
        c.forgiven++;
        c.deadline = now + this.timeoutMs;
        // Moved to the end, so the map stays in deadline order.
        this.inFlight.delete(id);
        this.inFlight.set(id, c);
        continue;
      }
      this.inFlight.delete(id);
      c.reject(new CommandTimeoutError(this.timeoutMs));
    }
    this.arm();
  }
}
