/**
 * What a shared limit is, as values: the store decides them (src/store/), the account and upstream
 * layers declare them. Pure data, so `limits/` needs nothing from the layers that count them.
 */

/** One limit a decision touches. All limits of one `consume` are checked, then all consumed. */
export type LimitSpec =
  | {
      /** Any `windowMs` window holds at most `limit` (sliding, not calendar). */
      readonly kind: 'window';
      readonly key: string;
      readonly name: string;
      readonly limit: number;
      readonly windowMs: number;
      readonly cost?: number;
    }
  | {
      /** Token bucket: `ratePerSec` refill, `burst` capacity (GCRA). */
      readonly kind: 'bucket';
      readonly key: string;
      readonly name: string;
      readonly ratePerSec: number;
      readonly burst: number;
      readonly cost?: number;
    }
  | {
      /** A quantity per UTC day (e.g. audio minutes); `cost` may be fractional. */
      readonly kind: 'daily';
      readonly key: string;
      readonly name: string;
      readonly limit: number;
      readonly cost?: number;
    };

/** A lease on one slot of a counted resource (connection caps, upstream concurrency). */
export interface LeaseSpec {
  readonly key: string;
  readonly name: string;
  readonly limit: number;
}
