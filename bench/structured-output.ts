/**
 * Structured output's cost in throughput: the same concurrent requests unconstrained and under a grammar, in one run
 * (interleaved rounds), as output tokens/s. CPU: stories260K with `json_object`; GPU: the 8B-shaped dummy with a
 * fixture vocabulary (GPT-2's, read from llama.cpp's vocabulary GGUF) padded to the model's width, under a JSON schema.
 *   node --import tsx bench/structured-output.ts                       # CPU, stories260K, json_object
 *   node --import tsx bench/structured-output.ts --model bench/configs/llama3-8b --device cuda --load-format dummy \
 *     --vocab gpt2 --grammar schema --requests 64 --max-tokens 128
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { loadEngine } from '../src/engine/load.ts';
import type { GenerateRequest } from '../src/engine/types.ts';
import type { GrammarSpec } from '../src/grammar/spec.ts';
import { projectRoot, sharedFixture } from '../test/helpers/fixtures.ts';
import { ggufVocabulary } from './gguf-vocab.ts';
import { SCHEMA } from './structured-schema.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    'load-format': { type: 'string', default: 'auto' },
    vocab: { type: 'string' },
    grammar: { type: 'string', default: 'json_object' },
    requests: { type: 'string', default: '16' },
    'max-tokens': { type: 'string', default: '96' },
    rounds: { type: 'string', default: '2' },
  },
});

const model = args.model ?? sharedFixture('models/stories260K').path;
if (!model) throw new Error('no model: pass --model, or set PAGODA_FIXTURES for stories260K');
const grammarVocabulary =
  args.vocab === 'gpt2' ? ggufVocabulary(sharedFixture('gguf/ggml-vocab-gpt-2.gguf').path) : undefined;
const loaded = loadEngine(model, {
  device: args.device,
  loadFormat: args['load-format'] as 'auto' | 'dummy',
  grammarVocabulary,
  log: () => {},
});
const { engine } = loaded;
const grammar: GrammarSpec =
  args.grammar === 'schema' ? { type: 'json_schema', schema: SCHEMA } : { type: 'json_object' };
const requests = Number(args.requests);
const maxTokens = Number(args['max-tokens']);

/** One round: all requests at once; output tokens and seconds. */
async function round(constrained: boolean, seed: number): Promise<{ tokens: number; seconds: number }> {
  const t0 = performance.now();
  let tokens = 0;
  await Promise.all(
    Array.from({ length: requests }, async (_, i) => {
      const req: GenerateRequest = {
        prompt: 'Once upon a time, a record:',
        params: { temperature: 1, seed: seed * 1000 + i, maxTokens },
        ...(constrained ? { grammar } : {}),
      };
      for await (const out of engine.generate(req)) for (const o of out.outputs) tokens += o.tokenIds.length;
    }),
  );
  return { tokens, seconds: (performance.now() - t0) / 1000 };
}

// Warm-up: kernels, the grammar worker and its compile.
await round(false, 99);
await round(true, 99);
const totals = { plain: { tokens: 0, seconds: 0 }, constrained: { tokens: 0, seconds: 0 } };
for (let r = 0; r < Number(args.rounds); r++) {
  for (const constrained of [false, true]) {
    const { tokens, seconds } = await round(constrained, r);
    const t = constrained ? totals.constrained : totals.plain;
    t.tokens += tokens;
    t.seconds += seconds;
  }
}
await engine.shutdown();
const rate = (t: { tokens: number; seconds: number }) => t.tokens / t.seconds;
const ratio = rate(totals.constrained) / rate(totals.plain);
const header = ['workload', 'output tok/s', 'tokens', 'seconds'];
const rows = [
  ['unconstrained', rate(totals.plain).toFixed(1), String(totals.plain.tokens), totals.plain.seconds.toFixed(2)],
  [
    grammar.type,
    rate(totals.constrained).toFixed(1),
    String(totals.constrained.tokens),
    totals.constrained.seconds.toFixed(2),
  ],
  ['ratio', `${(100 * ratio).toFixed(1)}%`, '', ''],
];
console.log(header.join(' | '));
for (const r of rows) console.log(r.join(' | '));
appendBenchResult(
  join(projectRoot, 'bench', 'RESULTS.md'),
  {
    name: 'structured output throughput',
    deviceName: loaded.deviceName,
    command: `node --import tsx bench/structured-output.ts ${process.argv.slice(2).join(' ')}`.trim(),
    about: `${requests} concurrent requests, ${maxTokens} max tokens, temperature 1, ${args.rounds} interleaved rounds, model ${basename(model)}${args.vocab ? `, ${args.vocab} vocabulary padded to the model` : ''}`,
  },
  header,
  rows,
);
