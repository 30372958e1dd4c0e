/**
 * The replica's live sessions, and the create / resume rules (CONTRACT.md §5 "Resume"): a resume
 * token brings back the same `session_id`, `expires_at` and history; a session still held by an
 * older connection is taken over (that connection closes with 4030); a session known only to the
 * store (its replica is gone) is rebuilt from its record and its unanswered requests are reported.
 */
import type { Principal } from '../identity/principal.js';
import type { ClientMessageOf, RequestId } from '../protocol/messages.js';
import { ParleyError } from '../protocol/codes.js';
import { StoreUnavailableError, type SessionRecord } from '../store/store.js';
import { randomBase64url, randomHex } from './ids.js';
import { Session, type SessionDeps } from './session.js';

/**
 * A resume the store cannot answer (Redis away) waits this long for it, asking again every
 * RESUME_RETRY_MS, before it is refused with `internal_error` + close 1011 ("reconnect and resume",
 * CONTRACT §5): never with `session_expired`, which would make the client drop a live session (D3).
 * Long enough to ride out a command timeout and the probe that rejoins a hung Redis (1 s), short
 * enough that the client is not left without an answer.
 */
export const RESUME_STORE_WAIT_MS = 5000;
const RESUME_RETRY_MS = 250;
/** The `retry_after_ms` of that refusal: the SDK reconnects after it and resumes. */
export const RESUME_RETRY_AFTER_MS = 2000;

export type RegistryDeps = Omit<SessionDeps, 'onGone'> & {
  readonly keyRing: { principalFor(accountId: string, keyId: string, learnerId?: string): Principal | undefined };
};

export type ResumeOutcome =
  | { ok: true; session: Session; previous: 'attached' | 'detached' | 'store'; lost: readonly RequestId[] }
  | { ok: false; error: ParleyError };

export class SessionRegistry {
  private readonly byId = new Map<string, Session>();
  private readonly byResumeToken = new Map<string, Session>();
  private readonly deps: SessionDeps;

  constructor(private readonly registryDeps: RegistryDeps) {
    this.deps = { ...registryDeps, onGone: (s) => this.forget(s) };
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<Session> {
    return this.byId.values();
  }

  create(principal: Principal, msg: ClientMessageOf<'session.start'>): Session {
    const now = this.deps.scheduler.now();
    const session = new Session(
      {
        sessionId: `sess_${randomHex(16)}`,
        resumeToken: `rt_${randomBase64url(24)}`,
        principal,
        language: msg.language ?? 'en',
        nativeLanguage: msg.native_language,
        scenario: msg.scenario,
        voice: msg.voice,
        audio: { format: msg.audio?.format ?? 'pcm16', sampleRate: msg.audio?.sample_rate ?? 16000 },
        createdAt: now,
        expiresAt: now + principal.plan.maxSessionSeconds * 1000,
      },
      this.deps,
    );
    this.byId.set(session.id, session);
    this.byResumeToken.set(session.resumeToken, session);
    return session;
  }

  /** Resumes being rebuilt from the store, by resume token: one Session per session, however many ask. */
  private readonly rebuilding = new Map<string, Promise<ResumeOutcome>>();

  /**
   * The session a resume token names: the live one on this replica, or one rebuilt from its
   * record. Resumes of one token that arrive together share one rebuild, so they get one Session
   * (and the later connection takes it over from the earlier with 4030), never two copies (D4).
   */
  resume(principal: Principal, resumeToken: string): Promise<ResumeOutcome> {
    const local = this.localResume(principal, resumeToken);
    if (local) return Promise.resolve(local);
    let pending = this.rebuilding.get(resumeToken);
    if (!pending) {
      pending = this.rebuild(principal, resumeToken);
      this.rebuilding.set(resumeToken, pending);
      const done = (): void => void this.rebuilding.delete(resumeToken);
      pending.then(done, done);
      return pending;
    }
    // A second resume of the same token while the first is being rebuilt: the same Session, once
    // it exists, as a live local one (its unanswered requests were reported to the first).
    return pending.then((first) => (first.ok ? (this.localResume(principal, resumeToken) ?? first) : first));
  }

  private localResume(principal: Principal, resumeToken: string): ResumeOutcome | undefined {
    const local = this.byResumeToken.get(resumeToken);
    if (local && !local.isGone) {
      if (local.principal.account.id !== principal.account.id) return { ok: false, error: unknownResume() };
      return { ok: true, session: local, previous: local.attached ? 'attached' : 'detached', lost: [] };
    }
    return undefined;
  }

  /** The record a resume token names; while the store cannot answer, asks again for a bounded time. */
  private async findRecord(resumeToken: string): Promise<SessionRecord | undefined> {
    const deadline = this.deps.scheduler.now() + RESUME_STORE_WAIT_MS;
    for (;;) {
      try {
        return await this.deps.store.findSessionByResumeToken(resumeToken);
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || this.deps.scheduler.now() >= deadline) throw err;
      }
      await new Promise<void>((resolve) => this.deps.scheduler.schedule(resolve, RESUME_RETRY_MS));
    }
  }

  private async rebuild(principal: Principal, resumeToken: string): Promise<ResumeOutcome> {
    let record: SessionRecord | undefined;
    try {
      record = await this.findRecord(resumeToken);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      // The session may well be alive: the client should come back and resume, not start over.
      return {
        ok: false,
        error: new ParleyError('internal_error', 'the session store cannot answer now; reconnect and resume the session', { retryAfterMs: RESUME_RETRY_AFTER_MS }),
      };
    }
    if (!record || record.accountId !== principal.account.id || record.expiresAt <= this.deps.scheduler.now()) {
      return { ok: false, error: unknownResume() };
    }
    const owner = this.registryDeps.keyRing.principalFor(record.accountId, record.keyId, record.learnerId) ?? principal;
    const session = new Session(
      {
        sessionId: record.sessionId,
        resumeToken: record.resumeToken,
        principal: owner,
        language: record.language,
        nativeLanguage: record.nativeLanguage,
        scenario: record.scenario,
        voice: record.voice,
        audio: record.audio,
        createdAt: record.createdAt,
        expiresAt: record.expiresAt,
        history: record.history,
        counters: record.counters,
      },
      this.deps,
    );
    this.byId.set(session.id, session);
    this.byResumeToken.set(session.resumeToken, session);
    if (record.replicaId !== this.deps.replicaId) {
      // The replica that held it (if alive) closes its connection with 4030 and lets go.
      this.deps.store.publish({ type: 'session.takeover', sessionId: session.id, from: this.deps.replicaId }).catch(() => undefined);
    }
    return { ok: true, session, previous: 'store', lost: record.pending };
  }

  private forget(session: Session): void {
    if (this.byId.get(session.id) === session) this.byId.delete(session.id);
    if (this.byResumeToken.get(session.resumeToken) === session) this.byResumeToken.delete(session.resumeToken);
  }
}

function unknownResume(): ParleyError {
  // Not a close: the connection is fine, the client just starts a new session on it.
  return new ParleyError('session_expired', 'session.start: "resume_token" is unknown or expired; start a new session', { closeCode: undefined });
}
