/**
 * The replica's live sessions, and the create / resume rules (CONTRACT.md §5 "Resume"): a resume
 * token brings back the same `session_id`, `expires_at` and history; a session still held by an
 * older connection is taken over (that connection closes with 4030); a session known only to the
 * store (its replica is gone) is rebuilt from its record and its unanswered requests are reported.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Principal } from '../identity/principal.js';
import type { ClientMessageOf, RequestId } from '../protocol/messages.js';
import { ParleyError } from '../protocol/codes.js';
import { Session, type SessionDeps } from './session.js';

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
        sessionId: `sess_${randomUUID().replace(/-/g, '')}`,
        resumeToken: `rt_${randomBytes(24).toString('base64url')}`,
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

  private async rebuild(principal: Principal, resumeToken: string): Promise<ResumeOutcome> {
    const record = await this.deps.store.findSessionByResumeToken(resumeToken);
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
