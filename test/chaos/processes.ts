/**
 * Every process the chaos launcher starts (replicas, HAProxy, redis-server) is registered here and
 * SIGKILLed when the launcher exits, however it exits, so an interrupted run leaves nothing behind
 * holding ports and CPU on a shared machine.
 */

const live = new Set<number>();
let hooked = false;

/** Registers a child's pid for the kill on exit; `forget` it once it has exited by itself. */
export function track(pid: number | undefined): void {
  if (pid === undefined) return;
  live.add(pid);
  if (hooked) return;
  hooked = true;
  // SIGKILL is synchronous, so it works in an 'exit' handler (no async work runs there).
  process.on('exit', killTracked);
}

export function forget(pid: number | undefined): void {
  if (pid !== undefined) live.delete(pid);
}

/** SIGKILLs every tracked process still registered (a paused redis-server included: SIGKILL needs no SIGCONT). */
export function killTracked(): void {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}
