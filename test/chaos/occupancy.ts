/**
 * The account's connections as the clients know them, per replica: the ground truth the run
 * compares `connections_used` and the connection cap against. A connection counts from the moment
 * the server proves it admitted it (`session.created` / `session.resumed`) until its socket
 * closes; a socket that is open but not yet admitted or refused is "in transition" (it may or may
 * not hold a slot on the server), and no comparison is made while any is.
 */
export class Occupancy {
  private readonly open = new Map<string, number>();
  private readonly peaks = new Map<string, number>();
  private peakAll = 0;
  private totalOpen = 0;
  /** Sockets open whose admission is not known yet. */
  transitional = 0;

  /** An admitted connection on `replica` (the name HAProxy reported, or the replica dialled directly). */
  admitted(replica: string): void {
    const n = (this.open.get(replica) ?? 0) + 1;
    this.open.set(replica, n);
    this.totalOpen++;
    if (n > (this.peaks.get(replica) ?? 0)) this.peaks.set(replica, n);
    if (this.totalOpen > this.peakAll) this.peakAll = this.totalOpen;
  }

  /** An admitted connection closed. */
  closed(replica: string): void {
    this.open.set(replica, (this.open.get(replica) ?? 0) - 1);
    this.totalOpen--;
  }

  count(replica: string): number {
    return this.open.get(replica) ?? 0;
  }

  get total(): number {
    return this.totalOpen;
  }

  /** Open connections per replica now. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.open);
  }

  /** Starts a new peak window at the current counts. */
  resetPeaks(): void {
    this.peaks.clear();
    for (const [r, n] of this.open) this.peaks.set(r, n);
    this.peakAll = this.totalOpen;
  }

  peak(replica: string): number {
    return this.peaks.get(replica) ?? 0;
  }

  get peakTotal(): number {
    return this.peakAll;
  }
}
