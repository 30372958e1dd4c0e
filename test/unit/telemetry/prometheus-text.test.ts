/** The strict exposition parser the telemetry tests rely on must itself refuse bad input. */
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, valueOf } from './prometheus-text.js';

describe('parsePrometheusText', () => {
  it('reads families, labels with escapes and histogram series', () => {
    const text = [
      '# HELP a_total Things',
      '# TYPE a_total counter',
      'a_total{code="1000",why="say \\"hi\\"\\n"} 3',
      '# TYPE h histogram',
      'h_bucket{le="0.1"} 1',
      'h_bucket{le="+Inf"} 2',
      'h_sum 0.3',
      'h_count 2',
      '',
    ].join('\n');
    const f = parsePrometheusText(text);
    expect(f.get('a_total')?.type).toBe('counter');
    expect(valueOf(f, 'a_total', { code: '1000', why: 'say "hi"\n' })).toBe(3);
    expect(valueOf(f, 'h_count')).toBe(2);
  });

  it.each([
    ['a sample before its TYPE', 'x 1\n'],
    ['a duplicate series', '# TYPE x gauge\nx 1\nx 2\n'],
    ['an unquoted label', '# TYPE x gauge\nx{a=1} 1\n'],
    ['a bad value', '# TYPE x gauge\nx one\n'],
    ['a negative counter', '# TYPE x counter\nx -1\n'],
    ['a histogram whose buckets decrease', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\n'],
    ['a histogram whose count differs from +Inf', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\n'],
    ['no final newline', '# TYPE x gauge\nx 1'],
  ])('rejects %s', (_what, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
