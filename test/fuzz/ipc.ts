/**
 * The side channel between the fuzzer and the app child (Node IPC): readings the fuzzer cannot
 * take from outside, taken inside the app's own process.
 */

/** `settle`: force and settle garbage collection first (a memory reading); else just count. */
export type ToChild = { readonly type: 'probe'; readonly id: number; readonly settle: boolean } | { readonly type: 'exit' };

export type FromChild =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'failed'; readonly message: string }
  | Probe;

/** One reading of the app process (after forced and settled garbage collection when asked). */
export interface Probe {
  readonly type: 'probe';
  readonly id: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** process.getActiveResourcesInfo(), counted by resource type (TCPSocketWrap, Timeout, ...). */
  readonly handles: Readonly<Record<string, number>>;
  /** Open WebSocket connections and live sessions, as the gateway counts them. */
  readonly connections: number;
  readonly sessions: number;
  /** CPU the app has used since it started (user + system), ms. */
  readonly cpuMs: number;
  /** Own properties of Object.prototype other than the standard ones: a polluted prototype. */
  readonly prototypeExtras: readonly string[];
}
