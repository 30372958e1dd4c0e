import { describe, expect, it } from 'vitest';
import { FairQueue } from '../../../../src/upstream/governor/fair-queue.js';

/** Drains the queue with shift(). */
function drain<T>(q: FairQueue<T>): T[] {
  const out: T[] = [];
  for (let item = q.shift(); item !== undefined; item = q.shift()) out.push(item);
  return out;
}

/** Positions of every queued item, in serving order (must equal [1..n] if positionOf matches shift). */
function positions<T>(q: FairQueue<T>, items: readonly T[]): (number | undefined)[] {
  return items.map((i) => q.positionOf(i));
}

describe('FairQueue', () => {
  it('is FIFO within one session', () => {
    const q = new FairQueue<string>();
    for (const x of ['a1', 'a2', 'a3']) q.push(x, 'acct', 'A');
    expect(q.size).toBe(3);
    expect(q.peek()).toBe('a1');
    expect(drain(q)).toEqual(['a1', 'a2', 'a3']);
    expect(q.size).toBe(0);
    expect(q.peek()).toBeUndefined();
    expect(q.shift()).toBeUndefined();
  });

  it('round-robins over the sessions of an account: a flooding session cannot starve a later one', () => {
    const q = new FairQueue<string>();
    for (let i = 1; i <= 5; i++) q.push(`a${i}`, 'acct', 'A');
    q.push('b1', 'acct', 'B');
    q.push('b2', 'acct', 'B');
    q.push('c1', 'acct', 'C');
    expect(drain(q)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4', 'a5']);
  });

  it('round-robins over accounts first: an account with many sessions gets one turn per round', () => {
    const q = new FairQueue<string>();
    // Account X has three sessions with two jobs each; account Y one session with three jobs.
    for (const s of ['s1', 's2', 's3']) for (let i = 1; i <= 2; i++) q.push(`x-${s}-${i}`, 'X', s);
    for (let i = 1; i <= 3; i++) q.push(`y-${i}`, 'Y', 'y');
    expect(drain(q)).toEqual([
      'x-s1-1', 'y-1',
      'x-s2-1', 'y-2',
      'x-s3-1', 'y-3',
      'x-s1-2', 'x-s2-2', 'x-s3-2',
    ]);
  });

  it('a session or account that empties leaves the rotation and rejoins at the end', () => {
    const q = new FairQueue<string>();
    q.push('x1', 'X', 'x');
    q.push('y1', 'Y', 'y');
    q.push('y2', 'Y', 'y');
    expect(q.shift()).toBe('x1'); // X is now empty and leaves
    q.push('x2', 'X', 'x'); // rejoins behind Y
    expect(drain(q)).toEqual(['y1', 'x2', 'y2']);
  });

  it('pushFront puts a retried item first: head of its session, session and account first in their rotations', () => {
    const q = new FairQueue<string>();
    q.push('a1', 'X', 'A');
    q.push('a2', 'X', 'A');
    q.push('b1', 'X', 'B');
    q.push('y1', 'Y', 'y');
    expect(q.shift()).toBe('a1'); // rotation now: Y, X(B, A)
    q.pushFront('a1', 'X', 'A');
    expect(q.peek()).toBe('a1');
    expect(drain(q)).toEqual(['a1', 'y1', 'b1', 'a2']);
  });

  it('pushFront works for a session and an account the queue does not know yet', () => {
    const q = new FairQueue<string>();
    q.push('y1', 'Y', 'y');
    q.pushFront('z1', 'Z', 'z');
    q.push('z2', 'Z', 'z');
    expect(drain(q)).toEqual(['z1', 'y1', 'z2']);
  });

  it('remove takes an item out anywhere and keeps the rotations in order', () => {
    const q = new FairQueue<string>();
    q.push('a1', 'X', 'A');
    q.push('a2', 'X', 'A');
    q.push('b1', 'X', 'B');
    q.push('y1', 'Y', 'y');
    expect(q.remove('a2')).toBe(true);
    expect(q.remove('a2')).toBe(false);
    expect(q.remove('y1')).toBe(true); // Y leaves the rotation
    expect(q.size).toBe(2);
    expect(q.has('y1')).toBe(false);
    expect(drain(q)).toEqual(['a1', 'b1']);
  });

  it('removing the head session item moves service to the next session', () => {
    const q = new FairQueue<string>();
    q.push('a1', 'X', 'A');
    q.push('b1', 'X', 'B');
    q.remove('a1');
    expect(q.peek()).toBe('b1');
  });

  it('removeSession returns the session items in FIFO order and leaves the others', () => {
    const q = new FairQueue<string>();
    q.push('a1', 'X', 'A');
    q.push('b1', 'X', 'B');
    q.push('a2', 'X', 'A');
    q.push('y1', 'Y', 'y');
    expect(q.removeSession('A')).toEqual(['a1', 'a2']);
    expect(q.removeSession('A')).toEqual([]);
    expect(q.removeSession('nope')).toEqual([]);
    expect(drain(q)).toEqual(['b1', 'y1']);
  });

  it('positionOf is the 1-based place in serving order, simulating both rotations', () => {
    const q = new FairQueue<string>();
    for (const s of ['s1', 's2']) for (let i = 1; i <= 3; i++) q.push(`x-${s}-${i}`, 'X', s);
    q.push('y1', 'Y', 'y');
    q.push('z1', 'Z', 'z');
    q.push('z2', 'Z', 'z');
    const all = [...q];
    expect(all).toEqual(['x-s1-1', 'y1', 'z1', 'x-s2-1', 'z2', 'x-s1-2', 'x-s2-2', 'x-s1-3', 'x-s2-3']);
    expect(positions(q, all)).toEqual(all.map((_, i) => i + 1));
    expect(q.positionOf('nope')).toBeUndefined();
    // Iterating changes nothing: shift() agrees.
    expect(drain(q)).toEqual(all);
  });

  it('positionOf matches shift() order after pushFront, remove and partial draining (random workload)', () => {
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const q = new FairQueue<number>();
    let next = 0;
    for (let step = 0; step < 400; step++) {
      const op = rnd(10);
      if (op < 5) q.push(next++, `acct${rnd(3)}`, `sess${rnd(5)}`);
      else if (op < 6) q.pushFront(next++, `acct${rnd(3)}`, `sess${rnd(5)}`);
      else if (op < 8) q.shift();
      else {
        const items = [...q];
        const victim = items[rnd(Math.max(1, items.length))];
        if (victim !== undefined) q.remove(victim);
      }
      const order = [...q];
      expect(order.length).toBe(q.size);
      if (step % 50 === 0) expect(positions(q, order)).toEqual(order.map((_, i) => i + 1));
    }
    const order = [...q];
    expect(drain(q)).toEqual(order);
  });

  it('refuses to hold the same item twice', () => {
    const q = new FairQueue<string>();
    q.push('a1', 'X', 'A');
    expect(() => q.push('a1', 'X', 'B')).toThrow(/already queued/);
    expect(() => q.pushFront('a1', 'X', 'A')).toThrow(/already queued/);
  });

  it('clear empties it and returns the items in serving order', () => {
    const q = new FairQueue<string>();
    q.push('a1', 'X', 'A');
    q.push('a2', 'X', 'A');
    q.push('y1', 'Y', 'y');
    expect(q.clear()).toEqual(['a1', 'y1', 'a2']);
    expect(q.size).toBe(0);
    q.push('a3', 'X', 'A');
    expect(drain(q)).toEqual(['a3']);
  });
});
