/**
 * The simulated conversation model: the tutor's reply ({@link tutorReply}).
 */
import type { CallOptions, ConversationProvider, ConversationRequest } from '../upstream/provider.js';
import { latency, type SimulatedTiming } from './timing.js';
import { tutorReply } from './tutor.js';

export class SimulatedConversationProvider implements ConversationProvider {
  constructor(private readonly timing: SimulatedTiming = {}) {}

  async reply(req: ConversationRequest, opts?: CallOptions): Promise<string> {
    await latency(this.timing, opts?.signal);
    return tutorReply(req);
  }
}
