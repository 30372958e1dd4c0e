import { describe, expect, it } from 'vitest';
import { randomBase64url, randomHex } from '../../../src/sessions/ids.js';

describe('pooled random ids', () => {
  it('give the asked number of bytes in their encoding', () => {
    expect(randomHex(16)).toMatch(/^[0-9a-f]{32}$/);
    expect(randomHex(10)).toMatch(/^[0-9a-f]{20}$/);
    expect(randomBase64url(24)).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('never repeat, across many refills of the pool', () => {
    const seen = new Set<string>();
    // 24 bytes each: about 170 ids a 4 KiB pool, so 20,000 ids cross over 100 refills.
    for (let i = 0; i < 20_000; i++) seen.add(randomBase64url(24));
    expect(seen.size).toBe(20_000);
  });

  it('spread their bytes evenly (no byte left zero or reused at a pool boundary)', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 4_000; i++) {
      const hex = randomHex(16);
      for (let j = 0; j < 32; j += 2) counts[parseInt(hex.slice(j, j + 2), 16)]!++;
    }
    // 64,000 bytes over 256 values: 250 expected each; a stuck or zeroed pool would skew this far.
    expect(Math.min(...counts)).toBeGreaterThan(150);
    expect(Math.max(...counts)).toBeLessThan(350);
  });
});
