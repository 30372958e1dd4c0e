/**
 * The REST API's shared schemas (TypeBox, so one declaration gives the JSON Schema and the type):
 * the error body every failure answers with, the rate-limit headers, the security requirement, and
 * helpers that put them into a route's `schema.response`. @fastify/swagger turns the route schemas
 * into the OpenAPI document (GET /openapi.json, src/edge/api-docs.ts).
 *
 * Response schemas document; they do not filter. The app serializes with JSON.stringify
 * (src/edge/api-docs.ts), so a field a handler sends but a schema forgets is not silently dropped
 * (fast-json-stringify would drop it): the OpenAPI test validates real answers of every route
 * against their schemas instead, so a forgotten field fails a test.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { errorCodeList, type ErrorCode } from '../protocol/codes.js';

/** A route schema's mark: its body may be left out (the route treats none as `{}`); see api-docs.ts. */
export const OPTIONAL_BODY = 'x-optional-body';

/** `$id` of the shared error body (`fastify.addSchema`), referenced as `ErrorBody#`. */
export const ERROR_BODY_ID = 'ErrorBody';

/** `{"error": {"code", "message", "retry_after"?}}` (CONTRACT §4). */
export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.Unsafe<ErrorCode>({ type: 'string', enum: errorCodeList, description: 'A stable code (docs/protocol.md "Error codes")' }),
        message: Type.String({ description: 'What went wrong, for people; never contains a secret' }),
        retry_after: Type.Optional(Type.Integer({ minimum: 0, description: 'Seconds to wait before retrying (429 and 503), as in Retry-After' })),
      },
      { additionalProperties: false },
    ),
  },
  { $id: ERROR_BODY_ID, additionalProperties: false, description: 'The error body of every failed REST call' },
);

/** A response that is the error body, with its own description (`$ref` to the shared schema). */
export function errorResponse(description: string, headers?: Record<string, TSchema>): Record<string, unknown> {
  return { description, $ref: `${ERROR_BODY_ID}#`, ...(headers ? { headers } : {}) };
}

/** `Retry-After` in whole seconds. */
export const RetryAfterHeader = Type.Integer({ minimum: 1, description: 'Seconds to wait before retrying' });

/** The rate-limit fields of every REST answer past the key check (src/edge/rate-limit-headers.ts). */
export const RateLimitHeaders: Record<string, TSchema> = {
  'X-RateLimit-Limit': Type.Integer({ description: "The key's rest quota per minute" }),
  'X-RateLimit-Remaining': Type.Integer({ description: 'Calls left in the window' }),
  'X-RateLimit-Reset': Type.Integer({ description: 'Unix time (seconds) when the window is empty again' }),
  'RateLimit-Policy': Type.String({ description: 'IETF draft-ietf-httpapi-ratelimit-headers: `"rest";q=<quota>;w=<window seconds>`' }),
  RateLimit: Type.String({ description: 'IETF draft: `"rest";r=<remaining>;t=<seconds until more quota>`; on a 429 t equals Retry-After' }),
  'X-Request-Id': Type.String({ description: 'The request id: the caller\'s X-Request-Id when valid, else a fresh one' }),
};

/** The header every answer carries. */
export const RequestIdHeader: Record<string, TSchema> = { 'X-Request-Id': RateLimitHeaders['X-Request-Id']! };

/** Security requirement of the API-key routes (`components.securitySchemes.apiKey`). */
export const API_KEY_SECURITY = [{ apiKey: [] }];

/** The failures every API-key route shares: bad key, auth-failure throttle, rest quota, internal error. */
export function apiKeyErrors(): Record<string, unknown> {
  return {
    401: errorResponse('Missing or invalid API key (`unauthorized`)', RequestIdHeader),
    429: errorResponse(
      'Over the key\'s rest quota (`rate_limited`, with the rate-limit headers), or too many failed authentications from this address',
      { ...RateLimitHeaders, 'Retry-After': RetryAfterHeader },
    ),
    '5xx': errorResponse('Internal error (`internal_error`)', RequestIdHeader),
  };
}

/** A JSON response with the rate-limit headers. */
export function limitedJson(description: string, schema: TSchema): Record<string, unknown> {
  return { ...schema, description, headers: RateLimitHeaders };
}

/** A response whose body is not JSON (`content` keeps fastify from compiling it as a serializer). */
export function textResponse(description: string, mediaType: string, headers?: Record<string, TSchema>): Record<string, unknown> {
  return { description, content: { [mediaType]: { schema: { type: 'string' } } }, ...(headers ? { headers } : {}) };
}

/** `POST /v1/tokens` and `POST /demo/token`: a single-use connection token. */
export const TokenResponse = Type.Object(
  {
    token: Type.String({ description: 'Opens exactly one WebSocket connection (subprotocol `parley.token.<token>`)' }),
    expires_at: Type.String({ format: 'date-time', description: 'ISO 8601' }),
    url: Type.String({ description: 'The WebSocket URL: ws(s)://<host>/v1/realtime' }),
  },
  { additionalProperties: false },
);
