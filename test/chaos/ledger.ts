/**
 * What the clients saw, per phase: every turn sent and how it ended, every server `error` event,
 * every close, every session lost for good. A turn belongs to the last phase it was in flight in
 * (a turn asked just before a fault and caught by it counts in the fault's phase).
 *
 * A turn is answered when its `reply.audio.end` arrives, errored when an `error` event with its
 * `request_id` arrives, and lost otherwise: the session closed for good, the SDK gave up on it
 * after a resume (`request_lost`), or it was still unanswered when the run ended.
 */

export interface LostTurn {
  /** The last phase the turn was in flight in. */
  readonly phase: string;
  readonly learner: number;
  readonly requestId: string | undefined;
  /** Why the client gave up: the SDK's error code (`request_lost`, `connection_closed`, a final close's code), or `unanswered at the end`. */
  readonly reason: string;
  /** Whether the request had left the client (false: it waited in the SDK's queue when its session ended). */
  readonly sent: boolean;
  /** Epoch ms the turn was asked for. */
  readonly at: number;
  /** The learner's connection history from a second before the turn (sockets, closes, resumes, answers). */
  readonly history: string;
}

export interface PhaseStats {
  readonly name: string;
  readonly startedAt: number;
  endedAt: number | undefined;
  turns: number;
  answered: number;
  /** Turns answered with an `error` carrying their request_id, by error code. */
  readonly turnErrors: Record<string, number>;
  readonly lost: LostTurn[];
  /** Every server `error` event the learners received (with or without request_id), by code. */
  readonly serverErrors: Record<string, number>;
  /** Learner sockets closed, by close code (and the error code that preceded it, if any). */
  readonly closes: Record<string, number>;
  /** Sessions that ended for good (the client stopped reconnecting), by close code and reason. */
  readonly sessionsLost: Record<string, number>;
  /** Terminal events (reply.audio.end or error) that arrived for a request already answered. */
  duplicates: number;
  /** Token mints (`POST /v1/tokens`) that failed, by HTTP status or error. */
  readonly tokenFailures: Record<string, number>;
  /** Sessions started (the first connect of a learner, or a new session after one was lost). */
  sessionsStarted: number;
  /** Milliseconds from asking for a turn to its answer, for the answered turns. */
  readonly latencies: number[];
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/** One turn in flight. */
export interface TurnEntry {
  /** The last phase the turn was in flight in (moved on at each phase change while unanswered). */
  phase: PhaseStats;
  readonly learner: number;
  readonly at: number;
  settled: boolean;
}

export class Ledger {
  readonly phases: PhaseStats[] = [];
  private readonly open = new Set<TurnEntry>();

  constructor() {
    this.begin('start-up');
  }

  /** The phase now running. */
  get current(): PhaseStats {
    return this.phases[this.phases.length - 1]!;
  }

  /** Ends the current phase and starts the next; returns it. */
  begin(name: string): PhaseStats {
    const now = Date.now();
    const prev = this.phases[this.phases.length - 1];
    if (prev) prev.endedAt = now;
    const phase: PhaseStats = {
      name,
      startedAt: now,
      endedAt: undefined,
      turns: 0,
      answered: 0,
      turnErrors: {},
      lost: [],
      serverErrors: {},
      closes: {},
      sessionsLost: {},
      duplicates: 0,
      tokenFailures: {},
      sessionsStarted: 0,
      latencies: [],
    };
    this.phases.push(phase);
    // A turn still in flight when a fault starts lives through it: it counts there, not before.
    for (const entry of this.open) {
      entry.phase.turns--;
      entry.phase = phase;
      phase.turns++;
    }
    return phase;
  }

  finish(): void {
    this.current.endedAt = Date.now();
  }

  /** Turns asked for and not settled yet. */
  get inFlight(): number {
    return this.open.size;
  }

  turnSent(learner: number): TurnEntry {
    const entry: TurnEntry = { phase: this.current, learner, at: Date.now(), settled: false };
    entry.phase.turns++;
    this.open.add(entry);
    return entry;
  }

  answered(entry: TurnEntry): void {
    if (!this.settle(entry)) return;
    entry.phase.answered++;
    entry.phase.latencies.push(Date.now() - entry.at);
  }

  errored(entry: TurnEntry, code: string): void {
    if (this.settle(entry)) bump(entry.phase.turnErrors, code);
  }

  lost(entry: TurnEntry, requestId: string | undefined, reason: string, sent: boolean, history = ''): void {
    if (this.settle(entry)) entry.phase.lost.push({ phase: entry.phase.name, learner: entry.learner, requestId, reason, sent, at: entry.at, history });
  }

  /** Marks every turn still unsettled as lost (the end of the run). */
  loseUnsettled(): void {
    for (const entry of [...this.open]) this.lost(entry, undefined, 'unanswered at the end', true);
  }

  serverError(code: string): void {
    bump(this.current.serverErrors, code);
  }

  close(code: number, errorCode: string | undefined): void {
    bump(this.current.closes, errorCode ? `${code} ${errorCode}` : String(code));
  }

  sessionLost(reason: string): void {
    bump(this.current.sessionsLost, reason);
  }

  tokenFailed(why: string): void {
    bump(this.current.tokenFailures, why);
  }

  sessionStarted(): void {
    this.current.sessionsStarted++;
  }

  duplicate(): void {
    this.current.duplicates++;
  }

  private settle(entry: TurnEntry): boolean {
    if (entry.settled) return false;
    entry.settled = true;
    this.open.delete(entry);
    return true;
  }
}
