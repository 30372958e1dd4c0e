/**
 * The oracle table: each input class and the answers the documentation allows for it, with where
 * the documentation says so. The model (model.ts, for WebSocket steps) and the HTTP case runner
 * (http-case.ts) apply these rules input by input; this table is what the report and
 * docs/operations.md print. A "strike" is one of the 10 invalid messages tolerated in 60 s: the
 * 11th is answered `error invalid_message` with close_code 1008, then close 1008.
 */

export interface OracleEntry {
  readonly answer: string;
  readonly ref: string;
}

const STRIKE = 'error invalid_message, connection stays (a strike; the 11th in 60 s: error + close 1008)';

export const ORACLE: Readonly<Record<string, OracleEntry>> = {
  'setup.session-start': { answer: 'session.created (request_id = id), or error rate_limited', ref: 'protocol.md Client → server' },
  'text.random-bytes': { answer: STRIKE, ref: 'protocol.md invalid messages' },
  'text.invalid-utf8': { answer: STRIKE, ref: 'protocol.md invalid messages; RFC 3629' },
  'text.random-json': { answer: `by content: ${STRIKE}; unknown type → unknown_type (a strike); a valid message → its answer`, ref: 'protocol.md Frames, Error codes' },
  'text.json-edge': { answer: 'by content, as JSON.parse reads RFC 8259 (duplicate keys: the last wins)', ref: 'protocol.md Frames' },
  'text.field-mutation': { answer: `${STRIKE}; request_id only when the id is valid (1-128 characters or an integer)`, ref: 'protocol.md Frames ("Unknown fields are refused")' },
  'text.deep-nesting': { answer: `${STRIKE}, or frame_too_large + 1009 past maxFrameBytes`, ref: 'protocol.md invalid messages, frame size' },
  'text.proto-keys': { answer: `${STRIKE} or unknown_type; Object.prototype untouched`, ref: 'protocol.md Frames' },
  'text.valid': {
    answer: 'the documented answer of the message (pong, session.created, session_already_started, session_not_started, session.ended + 1000, results by request_id, text_too_long; a cancel: request.cancelled or nothing; an unreadable WAV commit: a strike)',
    ref: 'protocol.md Client → server; CONTRACT §6',
  },
  'text.duplicate-id': { answer: `the first runs; the second: ${STRIKE}`, ref: 'protocol.md Error codes (duplicate request id)' },
  'binary.audio': { answer: 'nothing (appended); audio_too_large past maxUtteranceBytes; session_not_started before session.start', ref: 'protocol.md Per-connection limits (utterance)' },
  'binary.empty': { answer: `${STRIKE} (session_not_started before session.start)`, ref: 'protocol.md invalid messages' },
  'frame.fragmented': { answer: 'as the reassembled message; a pong for each ping between fragments', ref: 'RFC 6455 §5.4' },
  'frame.too-many-fragments': { answer: 'error invalid_message + close 1008 (a message in too many fragments)', ref: 'protocol.md Close codes (1008)' },
  'frame.control': { answer: 'ping: a pong with the same payload; unsolicited pong: nothing', ref: 'RFC 6455 §5.5.2-3' },
  'frame.ping-flood': { answer: 'a pong per ping; past 60 pongs waiting, the peer is dropped (no close frame)', ref: "RFC 6455 §5.5.2; ws maxPendingAutoPongs (not in protocol.md)" },
  'frame.oversize': { answer: 'error frame_too_large + close 1009; past maxPayloadBytes: close 1009 from the WebSocket layer (error event or none)', ref: 'protocol.md Per-connection limits (frame size), Close codes (1009)' },
  'frame.non-minimal-length': { answer: 'read as meant, or close 1002', ref: 'RFC 6455 §5.2' },
  'frame.violation': { answer: 'error protocol_error + close 1002; 1009 for a length over 2^53 or the ceiling', ref: 'protocol.md Close codes (1002); RFC 6455 §5.1-5.5' },
  'frame.close': { answer: "the server closes back with the client's code (no code: no code); an invalid code: protocol_error + 1002; a reason not UTF-8: protocol_error + 1007", ref: 'protocol.md Close codes (1002, 1007); RFC 6455 §5.5.1, §7.4' },
  'frame.truncated': { answer: 'no answer; the server lets go after our FIN', ref: 'RFC 6455 §5.2' },
  'conn.reset': { answer: 'nothing; its slots and session released', ref: 'CONTRACT §10' },
  'conn.fin': { answer: 'the server closes its side', ref: 'RFC 6455 §7.1.1' },
  'conn.close': { answer: 'close 1000 echoed', ref: 'RFC 6455 §5.5.1' },
  'bad-credentials': { answer: '101, error unauthorized + 4001 (or rate_limited + 4029 when failed auth is throttled)', ref: 'CONTRACT §4, §5' },
  'bad-origin': { answer: '101, error forbidden + 1008', ref: 'CONTRACT §5' },
  'malformed-upgrade': { answer: '400 / 426 / 4xx (101 only where the request is still a valid upgrade); never 5xx', ref: 'RFC 6455 §4.2.1, §4.4' },
  'huge-headers': { answer: '431 (414 for a long URL); 101 under the limit', ref: "Node's maxHeaderSize (16 KiB)" },
  garbage: { answer: '4xx or 505, or no answer; never 101 or another 5xx; the server lets go after our FIN', ref: 'RFC 9112' },
  pipelined: { answer: '101, then the pipelined frames answered in order', ref: 'RFC 6455 §4.1' },
  'body-on-upgrade': { answer: '400, or 101 with the body read as frames; never 5xx', ref: 'RFC 9112 §6' },
  slowloris: { answer: 'a slow valid request still works; an unfinished one may be held or cut', ref: "Node's headersTimeout" },
  'dead-peer': { answer: 'dropped within 2 heartbeats', ref: 'protocol.md Per-connection limits (dead peers)' },
  'half-close': { answer: 'the server closes its side within 5 s', ref: 'RFC 9293 §3.6; RFC 6455 §7.1.1' },
  'reset-upgrade': { answer: 'nothing; its slots released', ref: 'CONTRACT §5 connection caps' },
  'random-stream': { answer: 'any documented answer or close; the server lets go after our FIN', ref: 'RFC 6455 §5' },
};
