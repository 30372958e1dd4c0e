/** Metrics that are not just prom-client calls: bounded labels, hot-path totals, decisions. */
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/telemetry/metrics.js';
import { parsePrometheusText, valueOf } from './prometheus-text.js';

let m: Metrics;
afterEach(() => m?.close());

const scrape = async () => parsePrometheusText(await m.registry.metrics());

describe('Metrics', () => {
  it('counts store fallbacks by operation and folds unknown operations into "other"', async () => {
    m = new Metrics({ connections: () => 0, sessions: () => 0 });
    m.storeFallback('consume');
    m.storeFallback('consume');
    m.storeFallback('acquire');
    m.storeFallback('flushall');
    const f = await scrape();
    expect(valueOf(f, 'parley_store_fallback_total', { operation: 'consume' })).toBe(2);
    expect(valueOf(f, 'parley_store_fallback_total', { operation: 'acquire' })).toBe(1);
    expect(valueOf(f, 'parley_store_fallback_total', { operation: 'other' })).toBe(1);
    expect(valueOf(f, 'parley_store_fallback_total', { operation: 'flushall' })).toBeUndefined();
  });

  it('labels connections and sessions by configured account, anything else as "other"', async () => {
    m = new Metrics({ connections: () => 3, sessions: () => 1 });
    m.watchAccounts({ accountIds: ['acct_a', 'acct_b'], connectionAccounts: () => ['acct_a', 'acct_a', 'acct_zz'], sessionAccounts: () => ['acct_b'] });
    const f = await scrape();
    expect(valueOf(f, 'parley_account_connections', { account: 'acct_a' })).toBe(2);
    expect(valueOf(f, 'parley_account_connections', { account: 'acct_b' })).toBe(0);
    expect(valueOf(f, 'parley_account_connections', { account: 'other' })).toBe(1);
    expect(valueOf(f, 'parley_account_sessions', { account: 'acct_b' })).toBe(1);
    expect(valueOf(f, 'parley_connections')).toBe(3);
  });

  it('exposes frame totals as counters and keeps them across scrapes', async () => {
    m = new Metrics({ connections: () => 0, sessions: () => 0 });
    m.frameIn(10);
    m.frameIn(5);
    m.frameOut(100);
    await scrape();
    m.frameIn(1);
    const f = await scrape();
    expect(valueOf(f, 'parley_messages_received_total')).toBe(3);
    expect(valueOf(f, 'parley_received_bytes_total')).toBe(16);
    expect(valueOf(f, 'parley_messages_sent_total')).toBe(1);
    expect(valueOf(f, 'parley_sent_bytes_total')).toBe(100);
    expect(m.totals()).toMatchObject({ messagesIn: 3, bytesIn: 16, messagesOut: 1, bytesOut: 100 });
  });

  it('counts every limit of an allowed decision and only the refusing one of a refusal', async () => {
    m = new Metrics({ connections: () => 0, sessions: () => 0 });
    m.decided(['account.conversation.turn', 'account.audio_minutes'], { allowed: true });
    m.decided(['account.conversation.turn', 'account.audio_minutes'], { allowed: false, limitName: 'account.audio_minutes' });
    m.throttleDelay('messages', 20);
    const f = await scrape();
    expect(valueOf(f, 'parley_limit_decisions_total', { limit: 'account.conversation.turn', outcome: 'allowed' })).toBe(1);
    expect(valueOf(f, 'parley_limit_decisions_total', { limit: 'account.audio_minutes', outcome: 'allowed' })).toBe(1);
    expect(valueOf(f, 'parley_limit_decisions_total', { limit: 'account.audio_minutes', outcome: 'refused' })).toBe(1);
    expect(valueOf(f, 'parley_limit_decisions_total', { limit: 'account.conversation.turn', outcome: 'refused' })).toBeUndefined();
    expect(valueOf(f, 'parley_limit_decisions_total', { limit: 'connection.messages', outcome: 'throttled' })).toBe(1);
    expect(valueOf(f, 'parley_throttle_delay_seconds_count', { limit: 'messages' })).toBe(1);
  });

  it('always exposes the event-loop lag gauges (no quantile label), without the default metrics', async () => {
    m = new Metrics({ connections: () => 0, sessions: () => 0 });
    const f = await scrape();
    for (const stat of ['p50', 'p99', 'max']) {
      const name = `parley_event_loop_lag_${stat}_seconds`;
      expect(f.get(name)?.type).toBe('gauge');
      expect(valueOf(f, name)).toBeGreaterThanOrEqual(0);
    }
    expect(f.has('parley_event_loop_lag_seconds')).toBe(false);
    expect(f.has('nodejs_eventloop_lag_seconds')).toBe(false);
  });

  it('names the default process and Node.js metrics as prom-client does, without a prefix', async () => {
    m = new Metrics({ connections: () => 0, sessions: () => 0 }, { defaultMetrics: true });
    const f = await scrape();
    expect(f.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(f.get('process_resident_memory_bytes')?.type).toBe('gauge');
    expect(f.get('nodejs_heap_size_used_bytes')?.type).toBe('gauge');
    expect(f.get('nodejs_eventloop_lag_p99_seconds')?.type).toBe('gauge');
    expect([...f.keys()].filter((name) => /^parley_(process|nodejs)_/.test(name))).toEqual([]);
  });
});
