/**
 * Parley client SDK: a typed client for the gateway's WebSocket protocol (docs/client.md), for
 * browsers and Node 20+. ESM, no Node-only imports: pass `ws`'s `WebSocket` as the `WebSocket`
 * option in Node.
 *
 * ```ts
 * const client = new ParleyClient({
 *   url: 'wss://parley.example/v1/realtime',
 *   token: () => fetch('/my-backend/parley-token').then((r) => r.json()).then((b) => b.token),
 *   session: { language: 'es', scenario: 'ordering coffee' },
 * });
 * client.on('state', ({ state }) => console.log(state));
 * await client.connect();
 * const turn = await client.turnText('Hola, quiero un café');
 * await client.sendAudio(pcm16);              // paced under the session's limits
 * const result = await client.assess('Quiero un café con leche');
 * await client.end();
 * ```
 */
export { ParleyClient, type Handler } from './client.js';
export { ParleyClientError, type ClientOnlyErrorCode } from './errors.js';
export { CLOSE_CODES, ERROR_CODE_ACTIONS, closeInfo, reconnects, type CloseAction, type CloseCodeInfo, type KnownCloseCode } from './close-codes.js';
export type * from './types.js';
