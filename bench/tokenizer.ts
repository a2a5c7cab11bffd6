/**
 * Tokenizer throughput: encode, decode and streaming detokenization on the tokenizers at hand.
 * Run: node --import tsx bench/tokenizer.ts   (prints a table and appends it to bench/RESULTS.md)
 */
import { appendFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { IncrementalDetokenizer } from '../src/engine/detokenizer.ts';
import { ensureDemoModel } from '../src/loader/demo-model.ts';
import { loadTokenizer, type TextTokenizer } from '../src/loader/tokenizer.ts';
import { modelFixture, projectRoot, sharedFixture } from '../test/helpers/fixtures.ts';

const SAMPLE =
  'The GNU General Public License is a free, copyleft license for software. Flash Attention 将S写入到HBM, then ' +
  'the kernel reads it back. Numbers 12345 and émojis 🙂🦙 — naïve café, Ångström.\n';
const text = SAMPLE.repeat(Math.ceil(100_000 / SAMPLE.length));

function time(fn: () => void): number {
  fn();
  const t0 = performance.now();
  let runs = 0;
  while (performance.now() - t0 < 1000) {
    fn();
    runs++;
  }
  return (performance.now() - t0) / runs;
}

const tokenizers: [string, string | null][] = [
  ['llama2 (32k sentencepiece BPE)', sharedFixture('tokenizers/llama2').path || null],
  ['tiny-qwen2 (byte-level BPE)', modelFixture('tiny-qwen2').path || null],
  ['demo (bytes)', ensureDemoModel()],
];

const rows: string[] = [];
for (const [name, dir] of tokenizers) {
  if (!dir) continue;
  const tok: TextTokenizer = loadTokenizer(dir);
  const ids = tok.encode(text);
  const encodeMs = time(() => tok.encode(text));
  const decodeMs = time(() => tok.decode(ids));
  const streamIds = ids.slice(0, 5000);
  const streamMs = time(() => {
    const d = new IncrementalDetokenizer(tok, { skipSpecialTokens: true });
    for (const id of streamIds) d.push(id);
  });
  rows.push(
    `| ${name} | ${text.length} | ${ids.length} | ${((ids.length / encodeMs) * 1000).toFixed(0)} | ` +
      `${((ids.length / decodeMs) * 1000).toFixed(0)} | ${((streamMs * 1000) / streamIds.length).toFixed(1)} |`,
  );
}

const table = [
  '| tokenizer | chars | tokens | encode tokens/s | decode tokens/s | streaming detokenize µs/token |',
  '|---|---|---|---|---|---|',
  ...rows,
].join('\n');
console.log(table);
const header = `\n## tokenizer — ${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}\n\n`;
appendFileSync(
  join(projectRoot, 'bench', 'RESULTS.md'),
  `${header}Command: \`node --import tsx bench/tokenizer.ts\` (one thread)\n\n${table}\n`,
);
