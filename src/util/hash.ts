/**
 * Small hashes used across layers (the Redis store's limit ids, the simulator's deterministic
 * choices). A hash is a utility, not a concept of any one layer, so it lives below all of them.
 */

/** 32-bit FNV-1a of a string (UTF-16 code units) or bytes, optionally continuing from `seed`. */
export function fnv1a(input: string | Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  if (typeof input === 'string') {
    for (let i = 0; i < input.length; i++) {
      h ^= input.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  } else {
    for (let i = 0; i < input.length; i++) {
      h ^= input[i]!;
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}
