/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self time, so a
 * slow run can be explained without opening a profiler UI. Used by bench/run.ts when
 * BENCH_CPU_PROF is set.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotFunction {
  readonly name: string;
  readonly where: string;
  readonly selfPct: number;
}

/**
 * The `top` functions by self time, as a share of the BUSY samples: "(idle)" (the event loop
 * waiting) is left out, so the shares say where the server's CPU went.
 */
export function topSelf(file: string, top = 10, root = process.cwd()): HotFunction[] {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map<number, number>();
  for (const id of profile.samples ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
  let total = 0;
  // Several nodes (one per call path) can be the same function: merge by name + location.
  const merged = new Map<string, { name: string; where: string; hits: number }>();
  for (const [id, hits] of counts) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    total += hits;
    const name = f.functionName || '(anonymous)';
    let url = f.url.replace(/^file:\/\//, '');
    if (url.startsWith(root)) url = path.relative(root, url);
    // tsx's transpiled modules report every function on line 1; a line number there would mislead.
    const where = url ? (f.lineNumber > 0 ? `${url}:${f.lineNumber + 1}` : url) : '';
    const key = `${name}@${where}`;
    const entry = merged.get(key) ?? { name, where, hits: 0 };
    entry.hits += hits;
    merged.set(key, entry);
  }
  return [...merged.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfPct: total ? (100 * e.hits) / total : 0 }));
}
