/**
 * Structured output: compile time of a typical 20-property JSON schema (a fresh one each time, so no cache hit) in the
 * grammar worker, over the GPT-2 (50,257 tokens, from llama.cpp's vocabulary GGUF) and Llama 2 (32,000) vocabularies,
 * and the longest the event loop was held meanwhile (it should stay near zero: compiles run off it).
 * Run: node --import tsx bench/grammar-compile.ts   (prints a table and appends it to bench/RESULTS.md)
 */
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { GrammarService } from '../src/grammar/grammar-service.ts';
import { type GrammarVocabulary, loadGrammarVocabulary } from '../src/grammar/vocabulary.ts';
import { projectRoot, sharedFixture } from '../test/helpers/fixtures.ts';
import { ggufVocabulary } from './gguf-vocab.ts';

const RUNS = 20;

/** Property kinds of a typical function-call or extraction schema; `bounded` gives every string a maxLength. */
function schema(run: number, bounded = false): Record<string, unknown> {
  const kinds = [
    bounded ? { type: 'string', maxLength: 40 } : { type: 'string' },
    { type: 'integer', minimum: 0, maximum: 1000 },
    { type: 'number' },
    { type: 'boolean' },
    { enum: ['low', 'medium', 'high'] },
    { type: 'array', items: bounded ? { type: 'string', maxLength: 12 } : { type: 'string' }, maxItems: 5 },
    { type: 'string', format: 'date' },
    { type: 'object', properties: { name: { type: 'string' }, id: { type: 'integer' } }, required: ['name'] },
  ];
  const properties = Object.fromEntries(
    Array.from({ length: 20 }, (_, i) => [`field_${run}_${i}`, kinds[i % kinds.length]]),
  );
  return { type: 'object', properties, required: Object.keys(properties).slice(0, 15), additionalProperties: false };
}

const vocabularies: [string, () => GrammarVocabulary, string | false][] = [
  [
    'GPT-2 (50,257)',
    () => ggufVocabulary(sharedFixture('gguf/ggml-vocab-gpt-2.gguf').path),
    sharedFixture('gguf/ggml-vocab-gpt-2.gguf').skip,
  ],
  [
    'Llama 2 (32,000)',
    () => loadGrammarVocabulary(sharedFixture('tokenizers/llama2').path),
    sharedFixture('tokenizers/llama2').skip,
  ],
];

const rows: string[][] = [];
for (const [name, vocabulary, skip] of vocabularies) {
  if (skip) {
    console.error(`skipped ${name}: ${skip}`);
    continue;
  }
  const vocab = vocabulary();
  const service = new GrammarService({
    vocabulary: () => vocab,
    vocabSize: vocab.tokens.length,
    stopTokenIds: [],
    capacity: 1,
    workers: 1,
  });
  await service.compile({ type: 'json_schema', schema: schema(-1) }); // worker start-up and WebAssembly warm-up
  for (const bounded of [false, true]) {
    const times: number[] = [];
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      await service.compile({ type: 'json_schema', schema: schema(bounded ? 1000 + run : run, bounded) });
      times.push(performance.now() - t0);
    }
    lag.disable();
    times.sort((a, b) => a - b);
    const ms = (v: number) => v.toFixed(1);
    const kind = bounded ? 'strings with maxLength' : 'typical';
    rows.push([name, kind, ms(times[Math.floor(RUNS / 2)]!), ms(times.at(-1)!), ms(lag.max / 1e6)]);
  }
  await service.close();
}

const header = ['vocabulary', 'schema', 'compile median (ms)', 'compile max (ms)', 'event loop held at most (ms)'];
console.log(header.join(' | '));
for (const r of rows) console.log(r.join(' | '));
appendBenchResult(
  join(projectRoot, 'bench', 'RESULTS.md'),
  {
    name: 'grammar compile',
    deviceName: 'CPU',
    command: 'node --import tsx bench/grammar-compile.ts',
    about: `${RUNS} fresh 20-property schemas per vocabulary, one grammar worker (xgrammar WebAssembly)`,
  },
  header,
  rows,
);
