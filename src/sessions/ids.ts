/**
 * Random ids and secrets of connections and sessions (connection ids, session ids, resume
 * tokens), cut from a pooled buffer of CSPRNG bytes: one `randomFillSync` per 4 KiB instead of a
 * native `randomBytes` job per id, the way node's own `randomUUID` keeps a cache of random bytes
 * (lib/internal/crypto/random.js). The bytes are the same CSPRNG's, and each is used once.
 * Opening a session made three such calls; this takes them off the open path (issue 18 item 4).
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** The offset of `n` fresh bytes in `pool` (refilled when spent). */
function take(n: number): number {
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += n;
  return at;
}

/** `bytes` random bytes as lowercase hex (2 characters a byte). */
export function randomHex(bytes: number): string {
  const at = take(bytes);
  return pool.toString('hex', at, at + bytes);
}

/** `bytes` random bytes as base64url without padding (letters, digits, `-`, `_`). */
export function randomBase64url(bytes: number): string {
  const at = take(bytes);
  return pool.toString('base64url', at, at + bytes);
}
