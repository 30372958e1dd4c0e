import { ParleyClientError } from '../../src/client/index.js';

/** The ParleyClientError a promise rejects with; fails the test if it resolves or rejects otherwise. */
export async function rejection(p: Promise<unknown>): Promise<ParleyClientError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ParleyClientError) return err;
    throw err;
  }
  throw new Error('expected the promise to reject');
}
