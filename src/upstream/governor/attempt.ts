/** What an upstream attempt ends with besides its result: an abort, or the governor's timeout. */

/** The error a cancelled job rejects with (`name` is 'AbortError', like fetch's). */
export function abortError(reason: unknown): Error {
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const err = new Error('upstream call aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}

export function isAbort(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

/**
 * An attempt that gave no first byte, or no further byte, for `timeoutSeconds`: a streamed answer
 * is timed by its gaps, not by its whole length (a long reply is not a slow one).
 */
export class AttemptTimeout extends Error {
  constructor(seconds: number) {
    super(`timed out after ${seconds} s`);
    this.name = 'TimeoutError';
  }
}
