/**
 * Every client and server event of the contract (CONTRACT.md §5) as TypeBox schemas, compiled once
 * at module load. Client messages are validated on receipt; server events are typed here and
 * validated by the test suite on every event a test client receives.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';

const Strict = { additionalProperties: false } as const;

/** A request id: echoed as `request_id` on every event that answers the request. */
export const RequestId = Type.Union([
  Type.String({ minLength: 1, maxLength: 128 }),
  // Safe integers only: a larger one would not come back as the number the client sent.
  Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
]);
export type RequestId = Static<typeof RequestId>;

const Language = Type.String({ minLength: 2, maxLength: 35, pattern: '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$' });

export const AudioFormatSchema = Type.Object(
  {
    format: Type.Union([Type.Literal('pcm16'), Type.Literal('wav')], { default: 'pcm16' }),
    sample_rate: Type.Integer({ minimum: 8000, maximum: 48000, default: 16000 }),
  },
  Strict,
);

export const ClientMessages = {
  'session.start': Type.Object(
    {
      type: Type.Literal('session.start'),
      id: Type.Optional(RequestId),
      language: Type.Optional(Language),
      native_language: Type.Optional(Language),
      scenario: Type.Optional(Type.String({ maxLength: 200 })),
      voice: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      audio: Type.Optional(Type.Partial(AudioFormatSchema)),
      resume_token: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    },
    Strict,
  ),
  'input_audio.commit': Type.Object(
    {
      type: Type.Literal('input_audio.commit'),
      id: RequestId,
      purpose: Type.Union([Type.Literal('turn'), Type.Literal('assessment')]),
      reference_text: Type.Optional(Type.String({ minLength: 1 })),
    },
    Strict,
  ),
  'input_audio.clear': Type.Object({ type: Type.Literal('input_audio.clear'), id: Type.Optional(RequestId) }, Strict),
  'turn.text': Type.Object({ type: Type.Literal('turn.text'), id: RequestId, text: Type.String({ minLength: 1 }) }, Strict),
  translate: Type.Object(
    {
      type: Type.Literal('translate'),
      id: RequestId,
      text: Type.String({ minLength: 1 }),
      target_language: Language,
      source_language: Type.Optional(Language),
    },
    Strict,
  ),
  cancel: Type.Object(
    {
      type: Type.Literal('cancel'),
      request_id: RequestId,
      /** The learner's playback position in that request's reply audio, ms from its first byte. */
      played_ms: Type.Optional(Type.Number({ minimum: 0 })),
      id: Type.Optional(RequestId),
    },
    Strict,
  ),
  ping: Type.Object({ type: Type.Literal('ping'), id: Type.Optional(RequestId) }, Strict),
  'session.end': Type.Object({ type: Type.Literal('session.end'), id: Type.Optional(RequestId) }, Strict),
} as const;

export type ClientMessageType = keyof typeof ClientMessages;
export type ClientMessage = { [K in ClientMessageType]: Static<(typeof ClientMessages)[K]> }[ClientMessageType];
export type ClientMessageOf<K extends ClientMessageType> = Static<(typeof ClientMessages)[K]>;

const LimitStateSchema = Type.Object(
  { name: Type.String(), limit: Type.Number(), remaining: Type.Number(), reset_seconds: Type.Number({ minimum: 0 }) },
  Strict,
);

const SessionLimitsSchema = Type.Object(
  {
    messages_per_second: Type.Number(),
    message_burst: Type.Number(),
    message_queue: Type.Number(),
    bytes_per_second: Type.Number(),
    byte_burst: Type.Number(),
    max_frame_bytes: Type.Number(),
    max_session_seconds: Type.Number(),
    idle_timeout_seconds: Type.Number(),
    resume_window_seconds: Type.Number(),
    max_utterance_bytes: Type.Number(),
    max_text_chars: Type.Number(),
    audio: Type.Object({ format: Type.String(), sample_rate: Type.Number() }, Strict),
  },
  Strict,
);

const ReqId = Type.Optional(RequestId);
const SessionInfo = {
  session_id: Type.String(),
  resume_token: Type.String(),
  expires_at: Type.String({ description: 'ISO 8601' }),
  limits: SessionLimitsSchema,
};

export const ServerEvents = {
  'session.created': Type.Object({ type: Type.Literal('session.created'), request_id: ReqId, ...SessionInfo }, Strict),
  'session.resumed': Type.Object({ type: Type.Literal('session.resumed'), request_id: ReqId, ...SessionInfo }, Strict),
  transcript: Type.Object({ type: Type.Literal('transcript'), request_id: RequestId, text: Type.String() }, Strict),
  'reply.text.delta': Type.Object({ type: Type.Literal('reply.text.delta'), request_id: RequestId, delta: Type.String({ minLength: 1 }) }, Strict),
  'reply.text': Type.Object({ type: Type.Literal('reply.text'), request_id: RequestId, text: Type.String() }, Strict),
  'reply.audio.start': Type.Object(
    { type: Type.Literal('reply.audio.start'), request_id: RequestId, format: Type.String(), sample_rate: Type.Integer() },
    Strict,
  ),
  'reply.audio.end': Type.Object({ type: Type.Literal('reply.audio.end'), request_id: RequestId, bytes: Type.Integer({ minimum: 0 }) }, Strict),
  'assessment.result': Type.Object(
    {
      type: Type.Literal('assessment.result'),
      request_id: RequestId,
      score: Type.Number({ minimum: 0, maximum: 100 }),
      words: Type.Array(Type.Object({ word: Type.String(), score: Type.Number({ minimum: 0, maximum: 100 }) }, Strict)),
    },
    Strict,
  ),
  'translation.result': Type.Object({ type: Type.Literal('translation.result'), request_id: RequestId, text: Type.String() }, Strict),
  'request.queued': Type.Object({ type: Type.Literal('request.queued'), request_id: RequestId, position: Type.Integer({ minimum: 1 }) }, Strict),
  'request.cancelled': Type.Object(
    {
      type: Type.Literal('request.cancelled'),
      request_id: RequestId,
      stage: Type.Union([Type.Literal('waiting'), Type.Literal('queued'), Type.Literal('running'), Type.Literal('speaking'), Type.Literal('done')]),
      audio_bytes_sent: Type.Integer({ minimum: 0 }),
      kept_text: Type.String(),
    },
    Strict,
  ),
  'turn.metrics': Type.Object(
    {
      type: Type.Literal('turn.metrics'),
      request_id: RequestId,
      queued_ms: Type.Integer({ minimum: 0 }),
      stt_ms: Type.Optional(Type.Integer({ minimum: 0 })),
      first_token_ms: Type.Optional(Type.Integer({ minimum: 0 })),
      first_audio_ms: Type.Optional(Type.Integer({ minimum: 0 })),
      total_ms: Type.Integer({ minimum: 0 }),
      tts_requests: Type.Integer({ minimum: 0 }),
    },
    Strict,
  ),
  'quota.updated': Type.Object({ type: Type.Literal('quota.updated'), limits: Type.Array(LimitStateSchema) }, Strict),
  'session.expiring': Type.Object(
    {
      type: Type.Literal('session.expiring'),
      reason: Type.Union([Type.Literal('max_duration'), Type.Literal('idle')]),
      closes_in_ms: Type.Integer({ minimum: 0 }),
    },
    Strict,
  ),
  pong: Type.Object({ type: Type.Literal('pong'), request_id: ReqId }, Strict),
  error: Type.Object(
    {
      type: Type.Literal('error'),
      code: Type.String(),
      message: Type.String(),
      request_id: ReqId,
      retry_after_ms: Type.Optional(Type.Integer({ minimum: 0 })),
      close_code: Type.Optional(Type.Integer()),
    },
    Strict,
  ),
  'session.ended': Type.Object(
    {
      type: Type.Literal('session.ended'),
      request_id: ReqId,
      reason: Type.String(),
      usage: Type.Object(
        {
          duration_seconds: Type.Number(),
          turns: Type.Integer(),
          assessments: Type.Integer(),
          translations: Type.Integer(),
          audio_seconds: Type.Number(),
          messages_in: Type.Integer(),
          bytes_in: Type.Integer(),
        },
        Strict,
      ),
    },
    Strict,
  ),
} as const;

export type ServerEventType = keyof typeof ServerEvents;
export type ServerEventOf<K extends ServerEventType> = Static<(typeof ServerEvents)[K]>;
export type ServerEvent = { [K in ServerEventType]: ServerEventOf<K> }[ServerEventType];
export type SessionLimits = Static<typeof SessionLimitsSchema>;
export type ErrorEvent = ServerEventOf<'error'>;

/**
 * The `error` event: `request_id`, `retry_after_ms` (whole ms, never negative) and `close_code`
 * only when given.
 */
export function errorEvent(
  code: ErrorEvent['code'],
  message: string,
  opts: { requestId?: RequestId | undefined; retryAfterMs?: number | undefined; closeCode?: number | undefined } = {},
): ErrorEvent {
  return {
    type: 'error',
    code,
    message,
    ...(opts.requestId !== undefined ? { request_id: opts.requestId } : {}),
    ...(opts.retryAfterMs !== undefined ? { retry_after_ms: Math.max(0, Math.ceil(opts.retryAfterMs)) } : {}),
    ...(opts.closeCode !== undefined ? { close_code: opts.closeCode } : {}),
  } as ErrorEvent;
}
export type LimitStateWire = Static<typeof LimitStateSchema>;

function compileAll<T extends Record<string, TSchema>>(schemas: T): { [K in keyof T]: TypeCheck<T[K]> } {
  const out: Record<string, TypeCheck<TSchema>> = {};
  for (const [k, s] of Object.entries(schemas)) out[k] = TypeCompiler.Compile(s);
  return out as { [K in keyof T]: TypeCheck<T[K]> };
}

/** Compiled once at module load (STYLE.md §6). */
export const clientValidators = compileAll(ClientMessages);
const requestIdCheck = TypeCompiler.Compile(RequestId);
export const serverValidators = compileAll(ServerEvents);

export type DecodeResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; code: 'invalid_message' | 'unknown_type'; message: string; requestId?: RequestId };

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Decodes and validates one text frame. Never throws: a bad frame is a value that names the
 * problem (the field path and what was expected), so the caller can answer with an `error` event.
 */
export function decodeClientMessage(text: string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_message', message: 'frame is not valid JSON' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, code: 'invalid_message', message: 'frame must be a JSON object with a "type"' };
  }
  const obj = parsed as Record<string, unknown>;
  // Only an id that is itself valid is echoed: an empty or 200,000-character id echoed back as
  // `request_id` would break the server's own event schema (and mirror whatever a client sends).
  const requestId = requestIdCheck.Check(obj.id) ? obj.id : undefined;
  const type = obj.type;
  if (typeof type !== 'string') {
    return withId({ ok: false, code: 'invalid_message', message: '"type" must be a string' }, requestId);
  }
  if (!hasOwn.call(clientValidators, type)) {
    return withId({ ok: false, code: 'unknown_type', message: `unknown type "${type.slice(0, 64)}"` }, requestId);
  }
  const check = clientValidators[type as ClientMessageType];
  if (check.Check(obj)) return { ok: true, message: obj as ClientMessage };
  const first = check.Errors(obj).First();
  const field = first ? first.path.replace(/^\//, '').replace(/\//g, '.') : '';
  let detail = 'does not match its schema';
  if (first) {
    const where = field ? `"${field}"` : 'message';
    const literals = (first.schema as { anyOf?: { const?: unknown }[] }).anyOf?.map((s) => s.const);
    if (first.message.includes('Unexpected property')) detail = `unknown field "${field}"`;
    else if (first.message.includes('required property')) detail = `${where} is required`;
    else if (literals && literals.every((l) => l !== undefined)) detail = `${where} must be one of ${literals.map((l) => JSON.stringify(l)).join(', ')}`;
    else detail = `${where}: ${first.message.toLowerCase()}`;
  }
  return withId({ ok: false, code: 'invalid_message', message: `${type}: ${detail}` }, requestId);
}

function withId<T extends DecodeResult & { ok: false }>(r: T, id: RequestId | undefined): T {
  if (id !== undefined) r.requestId = id;
  return r;
}
