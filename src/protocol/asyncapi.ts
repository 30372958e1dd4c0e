/**
 * The AsyncAPI 3.1 document of `/v1/realtime` (CONTRACT §9), generated from the message schemas
 * themselves (`ClientMessages`, `ServerEvents`): every key of those objects becomes a message, so
 * a message type added to the protocol appears here without a change to this file. Served at
 * `GET /asyncapi.json` and committed as docs/asyncapi.json (scripts/gen-schemas.ts; a test checks
 * the file is up to date and that @asyncapi/parser accepts it).
 *
 * Operations are the gateway's view (AsyncAPI 3 describes the application, here the server): it
 * `receive`s the client messages and `send`s the server events, on one channel. Binary frames
 * (input audio, reply audio) are messages of their own with `application/octet-stream` payloads.
 */
import type { TSchema } from '@sinclair/typebox';
import { closeCodeList, errorCodeList } from './codes.js';
import { ClientMessages, ServerEvents, type ClientMessageType, type ServerEventType } from './messages.js';

/** The AsyncAPI version written (https://www.asyncapi.com/docs/reference/specification/v3.1.0). */
export const ASYNCAPI_VERSION = '3.1.0';

/** One line per message, where the contract says more than the schema. A type with none gets a generic summary. */
const CLIENT_SUMMARIES: Partial<Record<ClientMessageType, string>> = {
  'session.start': 'Starts a session, or resumes one with `resume_token`; answered by `session.created` or `session.resumed`.',
  'input_audio.commit': 'Ends an utterance: `purpose: "turn"` runs speech-to-text, the conversation model and text-to-speech; `"assessment"` scores pronunciation against `reference_text`.',
  'input_audio.clear': 'Discards the audio appended since the last commit.',
  'turn.text': 'A typed turn: answered by the reply text and audio.',
  translate: 'Translates `text` to `target_language`; answered by `translation.result`.',
  cancel: 'Cancels the named request wherever it is; answered by `request.cancelled` (unless the request is unknown or finished).',
  ping: 'Answered by `pong`; not activity for the idle timeout.',
  'session.end': 'Ends the session: `session.ended`, then close 1000.',
};

const SERVER_SUMMARIES: Partial<Record<ServerEventType, string>> = {
  'session.created': 'The session started: its id, resume token, expiry and limits.',
  'session.resumed': 'The session resumed on this connection, history intact.',
  transcript: "The learner's words (audio turns).",
  'reply.text.delta': 'A piece of the reply text as it arrives; the deltas of a request concatenate to its `reply.text`.',
  'reply.text': 'The whole reply text, once.',
  'reply.audio.start': 'Reply audio follows in binary frames.',
  'reply.audio.end': 'The reply audio is complete.',
  'assessment.result': 'A pronunciation score with per-word scores.',
  'translation.result': 'The translation.',
  'request.queued': 'The request waits for upstream capacity at this position.',
  'request.cancelled': 'The request was cancelled; nothing more comes for it.',
  'turn.metrics': 'Milliseconds from acceptance to each stage of a completed turn.',
  'quota.updated': "The session's and account's limits as they stand.",
  'session.expiring': 'The session closes soon (maximum duration or idle).',
  pong: 'Answers `ping`.',
  error: `A request failed, or the connection is about to close (then \`close_code\` is set). Codes: ${errorCodeList.join(', ')}. Close codes: ${closeCodeList.join(', ')}.`,
  'session.ended': 'The session ended, with its usage; the connection closes with 1000.',
};

/** A schema as plain JSON (TypeBox's symbols dropped), with a description added when it has none. */
function plain(schema: TSchema, description?: string): Record<string, unknown> {
  const out = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  if (description !== undefined && out.description === undefined) out.description = description;
  return out;
}

/** `session.start` → `session.start` (component keys allow letters, digits, `.`, `-`, `_`). */
function messageKey(type: string): string {
  return type.replace(/[^A-Za-z0-9._-]/g, '_');
}

export interface AsyncApiOptions {
  /** `host[:port]` of the example server (default `localhost:8080`). */
  readonly host?: string;
  /** `ws` or `wss` (default `ws`). */
  readonly protocol?: 'ws' | 'wss';
  /** The document's `info.version` (default the protocol's `v1`). */
  readonly version?: string;
}

/** The AsyncAPI 3 document of the realtime protocol, as a plain JSON object. */
export function asyncApiDocument(opts: AsyncApiOptions = {}): Record<string, unknown> {
  const messages: Record<string, unknown> = {};
  const clientRefs: Record<string, unknown>[] = [];
  const serverRefs: Record<string, unknown>[] = [];
  const channelMessages: Record<string, unknown> = {};

  const add = (type: string, message: Record<string, unknown>, refs: Record<string, unknown>[]): void => {
    const key = messageKey(type);
    messages[key] = message;
    channelMessages[key] = { $ref: `#/components/messages/${key}` };
    refs.push({ $ref: `#/channels/realtime/messages/${key}` });
  };

  for (const [type, schema] of Object.entries(ClientMessages)) {
    const summary = CLIENT_SUMMARIES[type as ClientMessageType] ?? `The \`${type}\` client message.`;
    add(type, { name: type, title: type, summary, contentType: 'application/json', payload: plain(schema) }, clientRefs);
  }
  add(
    'input_audio',
    {
      name: 'input_audio',
      title: 'input audio (binary frame)',
      summary: "Audio appended to the session's input buffer, in the format of session.start (default PCM16 little-endian 16 kHz mono).",
      contentType: 'application/octet-stream',
      payload: { type: 'string', format: 'binary' },
    },
    clientRefs,
  );
  for (const [type, schema] of Object.entries(ServerEvents)) {
    const summary = SERVER_SUMMARIES[type as ServerEventType] ?? `The \`${type}\` server event.`;
    add(type, { name: type, title: type, summary, contentType: 'application/json', payload: plain(schema) }, serverRefs);
  }
  add(
    'reply.audio',
    {
      name: 'reply.audio',
      title: 'reply audio (binary frame)',
      summary: 'Reply audio between reply.audio.start and reply.audio.end, in the format it announced (PCM16 little-endian mono).',
      contentType: 'application/octet-stream',
      payload: { type: 'string', format: 'binary' },
    },
    serverRefs,
  );

  return {
    asyncapi: ASYNCAPI_VERSION,
    info: {
      title: 'Parley realtime API',
      version: opts.version ?? 'v1',
      description:
        'One WebSocket per learner conversation (CONTRACT.md §5, docs/protocol.md). Text frames are JSON objects with a `type`; ' +
        'a request may carry an `id`, echoed as `request_id` on every event that answers it. Authenticate with the subprotocols ' +
        '`["parley.v1", "parley.token.<token>"]` (the server answers `parley.v1`), or `?token=<token>`, or, server-side only, ' +
        '`Authorization: Bearer <api key>`. Tokens come from `POST /v1/tokens` (see /openapi.json). Every close other than 1000 ' +
        'is preceded by an `error` event whose `close_code` is the code.',
    },
    defaultContentType: 'application/json',
    servers: {
      gateway: {
        host: opts.host ?? 'localhost:8080',
        protocol: opts.protocol ?? 'ws',
        description: 'A Parley gateway (wss:// behind TLS).',
        security: [{ $ref: '#/components/securitySchemes/token' }, { $ref: '#/components/securitySchemes/apiKey' }],
      },
    },
    channels: {
      realtime: {
        address: '/v1/realtime',
        title: 'Realtime session',
        description: 'The WebSocket endpoint. Subprotocol `parley.v1` (plus `parley.token.<token>` to authenticate).',
        messages: channelMessages,
        bindings: {
          ws: {
            bindingVersion: '0.1.0',
            method: 'GET',
            query: {
              type: 'object',
              properties: { token: { type: 'string', description: 'A token from POST /v1/tokens (when the subprotocol cannot carry it)' } },
            },
            headers: {
              type: 'object',
              properties: {
                'Sec-WebSocket-Protocol': { type: 'string', description: '"parley.v1, parley.token.<token>"' },
                Authorization: { type: 'string', description: '"Bearer <api key>", server-side clients only' },
              },
            },
          },
        },
      },
    },
    operations: {
      receiveClientMessage: {
        action: 'receive',
        channel: { $ref: '#/channels/realtime' },
        title: 'Client → gateway',
        summary: 'Messages the client sends: JSON requests and binary input audio.',
        messages: clientRefs,
      },
      sendServerEvent: {
        action: 'send',
        channel: { $ref: '#/channels/realtime' },
        title: 'Gateway → client',
        summary: 'Events the gateway sends: JSON events and binary reply audio.',
        messages: serverRefs,
      },
    },
    components: {
      messages,
      securitySchemes: {
        token: {
          type: 'httpApiKey',
          name: 'token',
          in: 'query',
          description: 'A single-use token from POST /v1/tokens, in the subprotocol `parley.token.<token>` (preferred) or `?token=`.',
        },
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key (`Authorization: Bearer sk_…`); server-side clients only, never in a browser.' },
      },
    },
  };
}
