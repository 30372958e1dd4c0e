/** Simulated providers whose conversation call waits for the test to open a gate. */
import { createSimulatedProviders } from '../../src/simulator/index.js';
import type { Providers } from '../../src/upstream/provider.js';

export interface GatedProviders {
  readonly providers: Providers;
  /** Lets every waiting (and later) conversation call through. */
  open(): void;
  /** Resolves when the first conversation call has started. */
  readonly started: Promise<void>;
  /** Whether a conversation call's signal was aborted while it waited. */
  aborted(): boolean;
}

export function gatedProviders(): GatedProviders {
  const sim = createSimulatedProviders();
  let open!: () => void;
  let started!: () => void;
  let wasAborted = false;
  const gate = new Promise<void>((r) => (open = r));
  const startedP = new Promise<void>((r) => (started = r));
  return {
    providers: {
      ...sim,
      conversation: {
        async reply(req, opts) {
          started();
          opts?.signal?.addEventListener('abort', () => (wasAborted = true));
          await gate;
          return sim.conversation.reply(req, opts);
        },
      },
    },
    open: () => open(),
    started: startedP,
    aborted: () => wasAborted,
  };
}
