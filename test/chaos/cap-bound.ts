/**
 * The connection cap the documentation promises while Redis is unreachable, per replica, and the
 * check of what the clients really held against it.
 *
 * docs/operations.md, "When Redis is unreachable": connection caps are decided in process at the
 * replica's share, cap ÷ `store.expectedReplicas` (at least 1), and a replica counts its own open
 * connections (those opened before the outage too) against that share. So it admits new ones only
 * while it holds fewer than its share, and holds at most `max(openAtStart, share)`.
 */

/** The share of a cap one replica decides alone (src/store/resilient.ts shareOf, integral). */
export function shareOf(cap: number, replicas: number): number {
  return replicas <= 1 ? cap : Math.max(1, Math.floor(cap / replicas));
}

/** The most connections of the account a replica may hold during an outage, by the documented rule. */
export function documentedBound(share: number, openAtStart: number): number {
  return Math.max(openAtStart, share);
}

/** The documented rule in one line, for the report. */
export const DOCUMENTED_RULE = 'each replica counts its own open connections against its share, cap ÷ expectedReplicas, and admits new ones only below it';

export interface ReplicaCapCheck {
  readonly replica: string;
  readonly openAtStart: number;
  readonly peak: number;
  readonly bound: number;
  /** Connections held beyond the documented bound (0 when kept). */
  readonly beyondBound: number;
}

export interface CapCheck {
  readonly cap: number;
  readonly share: number;
  readonly replicas: readonly ReplicaCapCheck[];
  /** Most connections the account held at once (all replicas). */
  readonly peakTotal: number;
  /** peakTotal − cap, when positive: by how much the cap itself was exceeded. */
  readonly overCap: number;
  /** Sum of the per-replica bounds. */
  readonly boundTotal: number;
  readonly kept: boolean;
}

/** Compares per-replica peaks with the documented bound. */
export function checkCaps(
  cap: number,
  replicaCount: number,
  openAtStart: Readonly<Record<string, number>>,
  peaks: Readonly<Record<string, number>>,
  peakTotal: number,
): CapCheck {
  const share = shareOf(cap, replicaCount);
  const names = [...new Set([...Object.keys(openAtStart), ...Object.keys(peaks)])].sort();
  const replicas = names.map((replica) => {
    const start = openAtStart[replica] ?? 0;
    const peak = peaks[replica] ?? 0;
    const bound = documentedBound(share, start);
    return { replica, openAtStart: start, peak, bound, beyondBound: Math.max(0, peak - bound) };
  });
  return {
    cap,
    share,
    replicas,
    peakTotal,
    overCap: Math.max(0, peakTotal - cap),
    boundTotal: replicas.reduce((a, r) => a + r.bound, 0),
    kept: replicas.every((r) => r.beyondBound === 0),
  };
}
