/**
 * A chat model's output over time: the first token `firstTokenMs` after the call (default
 * `latencyMs`, jittered by `random`), then one every 1000 / `tokensPerSecond` ms (all at once
 * without it), each handed to `onToken` as it is due. Used by the simulated conversation and
 * translation and by the simulator server's `/chat/completions`.
 */
import { jittered, Timeline, type SimulatedTiming } from './timing.js';

/**
 * Hands `pieces` to `onToken` on the chat timing of `timing`; resolves after the last (after the
 * first-token wait when there is none). Rejects with an AbortError as soon as `signal` aborts,
 * and then hands out nothing more.
 */
export async function streamTokens(pieces: readonly string[], timing: SimulatedTiming, signal: AbortSignal | undefined, onToken: (piece: string) => void): Promise<void> {
  const timeline = new Timeline();
  const firstMs = jittered(timing.firstTokenMs ?? timing.latencyMs ?? 0, timing.random);
  const tps = timing.tokensPerSecond;
  const gapMs = tps !== undefined && tps > 0 ? 1000 / tps : 0;
  await timeline.until(firstMs, signal);
  for (let i = 0; i < pieces.length; i++) {
    if (i > 0) await timeline.until(firstMs + i * gapMs, signal);
    onToken(pieces[i]!);
  }
}
