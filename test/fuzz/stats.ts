/**
 * What a fuzz run counts: frames and steps by input class, unexpected answers (each with the seed,
 * case and input that reproduce it), and what was seen in every answer whatever its step:
 * `internal_error` events and events that break the protocol's schemas.
 */
import type { HttpVariant, StepClass } from './cases.js';
import type { Item } from './raw-client.js';

export interface Finding {
  readonly seed: number;
  readonly caseIndex: number;
  /** The class of the step (or HTTP variant) whose answer was unexpected. */
  readonly cls: string;
  readonly transport?: string;
  readonly step?: number;
  /** The offending input, truncated, without secrets. */
  readonly input: string;
  /** What the oracle allowed. */
  readonly expected: readonly string[];
  /** What came back. */
  readonly observed: readonly string[];
  /** Why the answer is outside the oracle. */
  readonly problems: readonly string[];
}

export interface Count {
  frames: number;
  steps: number;
  unexpected: number;
}

const KEEP_FINDINGS = 40;

export class Stats {
  readonly byClass: Record<string, Count> = {};
  readonly byHttp: Record<string, Count> = {};
  readonly findings: Finding[] = [];
  unexpected = 0;
  framesSent = 0;
  barrierPings = 0;
  sessionCases = 0;
  httpCases = 0;
  /** `internal_error` events received on attack connections. */
  internalErrors = 0;
  /** Server events that are not JSON or break their schema (ServerEvents). */
  schemaViolations = 0;
  readonly schemaExamples: string[] = [];
  readonly mutationsHit = new Set<number>();
  /** Close codes the attack connections were closed with, by code. */
  readonly closeCodes: Record<string, number> = {};
  /** Slowloris sockets the server closed before the fuzzer gave up on them. */
  slowlorisClosedByServer = 0;
  slowlorisHeld = 0;
  /** Connections the app dropped for a ping flood (ws's maxPendingAutoPongs), no close frame. */
  pingFloodDrops = 0;

  /** Counts what every received item says, whatever step it belongs to. */
  onItem = (item: Item): void => {
    if (item.kind !== 'event') return;
    const p = item.parsed;
    if (p.problem) {
      this.schemaViolations++;
      if (this.schemaExamples.length < 5) this.schemaExamples.push(`${p.problem}: ${item.raw.slice(0, 200)}`);
    }
    if (p.event?.type === 'error' && p.event.code === 'internal_error') this.internalErrors++;
  };

  step(cls: StepClass, frames: number): void {
    const c = (this.byClass[cls] ??= { frames: 0, steps: 0, unexpected: 0 });
    c.frames += frames;
    c.steps++;
    this.framesSent += frames;
  }

  http(variant: HttpVariant, frames: number): void {
    const c = (this.byHttp[variant] ??= { frames: 0, steps: 0, unexpected: 0 });
    c.frames += frames;
    c.steps++;
    this.framesSent += frames;
  }

  /** `null`: a close frame without a code; 'none': TCP ended with no close frame; 'reset': we reset it. */
  closed(code: number | null | 'none' | 'reset'): void {
    const k = code === null ? 'no code' : code === 'none' ? 'no close frame' : String(code);
    this.closeCodes[k] = (this.closeCodes[k] ?? 0) + 1;
  }

  finding(f: Finding, http: boolean): void {
    this.unexpected++;
    const table = http ? this.byHttp : this.byClass;
    (table[f.cls] ??= { frames: 0, steps: 0, unexpected: 0 }).unexpected++;
    if (this.findings.length < KEEP_FINDINGS) this.findings.push(f);
  }
}
