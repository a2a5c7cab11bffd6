/**
 * Where a process's host time went, from a V8 CPU profile (`node --cpu-prof --cpu-prof-dir=DIR …`): each function's
 * self time and its time including callees, as a share of the profile's span, the functions of a file merged. A
 * batch-1 decode step on the GPU spends its host time in the engine, the step's uploads and launches, and the waits
 * for the device (the native calls a step blocks in show as the functions that called them).
 * Usage: npx tsx bench/cpuprofile-summary.ts FILE.cpuprofile... [--top 25] [--match TEXT]
 *   a table pair per file (node writes one per thread: the main thread's and each worker's);
 *   --match: only the functions whose file or name contains TEXT (e.g. src/ for the project's own code).
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, match: { type: 'string', default: '' } },
});
if (positionals.length === 0) throw new Error('usage: bench/cpuprofile-summary.ts FILE.cpuprofile... [--top N]');
for (const file of positionals) summarize(file);

function summarize(file: string): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  /** A function's key: its name and file (relative to the working directory; tsx's line numbers are its own). */
  function keyOf(n: ProfileNode): string {
    const { functionName, url } = n.callFrame;
    const file = url.startsWith('file://') ? relative(process.cwd(), new URL(url).pathname) : url;
    return `${functionName || '(anonymous)'} ${file}`.trim();
  }

  // A sample's time is the delta to the next sample; the self time goes to its node, the inclusive time to each
  // distinct function on its stack (a recursive function counted once).
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i + 1] ?? 0;
    let id: number | undefined = profile.samples[i]!;
    const leaf = keyOf(byId.get(id)!);
    self.set(leaf, (self.get(leaf) ?? 0) + us);
    const seen = new Set<string>();
    while (id !== undefined) {
      const k = keyOf(byId.get(id)!);
      if (!seen.has(k)) {
        seen.add(k);
        total.set(k, (total.get(k) ?? 0) + us);
      }
      id = parent.get(id);
    }
  }

  const spanUs = profile.endTime - profile.startTime;
  const top = Number(opts.top);
  const table = (title: string, m: Map<string, number>) => {
    const rows = [...m].filter(([k]) => k.includes(opts.match)).sort((a, b) => b[1] - a[1]);
    console.log(`\n| ${title} | ms | share |\n|---|---|---|`);
    for (const [k, us] of rows.slice(0, top)) {
      console.log(`| ${k} | ${(us / 1e3).toFixed(1)} | ${((100 * us) / spanUs).toFixed(1)} % |`);
    }
  };
  console.log(`\n${file}: ${(spanUs / 1e6).toFixed(2)} s, ${profile.samples.length} samples`);
  table('self time', self);
  table('with callees', total);
}
