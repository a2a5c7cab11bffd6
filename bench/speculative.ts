/**
 * Speculative decoding against plain decoding in one run: the same concurrent requests through one target model
 * with each proposer (off, n-gram lookup, draft models), rounds interleaved; output tokens/s, engine steps and the
 * acceptance rate. CPU: stories260K greedy on story openers (its stories repeat, so prompt lookup finds drafts).
 * GPU: the 8B-shaped dummy with the Llama-3.2-1B shape as draft (random weights: the mechanism's overhead at about 0%
 * acceptance) and with itself as draft (its ceiling).
 *   node --import tsx bench/speculative.ts                                     # CPU, stories260K: off, ngram
 *   node --import tsx bench/speculative.ts --model bench/configs/llama3-8b --device cuda --load-format dummy \
 *     --prompts random --kv-cache-memory 8GiB --proposers off,ngram,bench/configs/llama3.2-1b,self
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { parseBytes } from '../src/cli/engine-options.ts';
import { Engine } from '../src/engine/engine.ts';
import { loadEngine } from '../src/engine/load.ts';
import { Rng } from '../src/engine/sequence.ts';
import type { SpeculativeConfig } from '../src/engine/speculation.ts';
import { type EngineOptions, prepareModel } from '../src/runner/load.ts';
import { projectRoot, sharedFixture } from '../test/helpers/fixtures.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    device: { type: 'string', default: 'cpu' },
    'load-format': { type: 'string', default: 'auto' },
    'kv-cache-memory': { type: 'string' },
    proposers: { type: 'string', default: 'off,ngram' },
    k: { type: 'string', default: '4' },
    'ngram-min': { type: 'string', default: '2' },
    'ngram-max': { type: 'string', default: '4' },
    prompts: { type: 'string', default: 'stories' },
    requests: { type: 'string', default: '8' },
    'max-tokens': { type: 'string', default: '160' },
    temperature: { type: 'string', default: '0' },
    rounds: { type: 'string', default: '2' },
  },
});

const model = args.model ?? sharedFixture('models/stories260K').path;
if (!model) throw new Error('no model: pass --model, or set PAGODA_FIXTURES for stories260K');
const options: EngineOptions = {
  device: args.device,
  loadFormat: args['load-format'] as 'auto' | 'dummy',
  kvCacheMemory: args['kv-cache-memory'] === undefined ? undefined : parseBytes(args['kv-cache-memory']),
  log: () => {},
};
const target = loadEngine(model, options);
const k = Number(args.k);
const requests = Number(args.requests);
const maxTokens = Number(args['max-tokens']);
const temperature = Number(args.temperature);

const OPENERS = [
  'Once upon a time',
  'One day, a little girl named Lily',
  'Tom and his dog went to the park.',
  'There was a big tree in the garden.',
];
const rng = new Rng(0, 0);
const prompts = Array.from({ length: requests }, (_, i) =>
  args.prompts === 'random'
    ? Array.from({ length: 64 }, () => 1 + Math.floor(rng.next() * (target.config.vocabSize - 1)))
    : target.tokenizer.encode(OPENERS[i % OPENERS.length]!),
);

/** The speculative setting of one proposer name: off, ngram, self (the target as its own draft) or a model. */
function speculativeFor(name: string): SpeculativeConfig | undefined {
  if (name === 'off') return undefined;
  if (name === 'ngram')
    return { numTokens: k, method: 'ngram', ngram: { min: Number(args['ngram-min']), max: Number(args['ngram-max']) } };
  // A separate load even for `self`: the draft has its own KV cache (and, on the GPU, its own graphs).
  const draft = prepareModel(name === 'self' ? model : name, options);
  const { runner, numBlocks, blockSize, maxModelLen } = draft;
  return { numTokens: k, method: 'draft', draft: { runner, numBlocks, blockSize, maxModelLen } };
}

// Engines take turns over the target's runner and KV cache (each frees every block before the next runs).
const names = args.proposers.split(',');
const engines = names.map(
  (name) =>
    new Engine({
      ...target.engine.config,
      promptEncoder: undefined,
      grammar: undefined,
      // The target's engine frees the backend at its own shutdown, not each copy.
      release: undefined,
      speculative: speculativeFor(name),
    }),
);

/** One round: every request at once through `engine`; output tokens and seconds. */
async function round(engine: Engine, seed: number): Promise<{ tokens: number; seconds: number }> {
  const t0 = performance.now();
  let tokens = 0;
  await Promise.all(
    prompts.map(async (prompt, i) => {
      const params = { temperature, seed: seed * 1000 + i, maxTokens, ignoreEos: true };
      for await (const out of engine.generate({ prompt, params }))
        for (const o of out.outputs) tokens += o.tokenIds.length;
    }),
  );
  return { tokens, seconds: (performance.now() - t0) / 1000 };
}

for (const e of engines) await round(e, 99); // warm-up (kernels, graphs)
const totals = engines.map(() => ({ tokens: 0, seconds: 0, steps: 0, drafted: 0, accepted: 0 }));
for (let r = 0; r < Number(args.rounds); r++) {
  for (const [i, e] of engines.entries()) {
    const before = e.stats();
    const { tokens, seconds } = await round(e, r);
    const after = e.stats();
    const t = totals[i]!;
    t.tokens += tokens;
    t.seconds += seconds;
    t.steps += after.steps - before.steps;
    t.drafted += after.specDraftTokens - before.specDraftTokens;
    t.accepted += after.specAcceptedTokens - before.specAcceptedTokens;
  }
}
for (const e of engines) await e.shutdown();
await target.engine.shutdown();

const base = totals[0]!.tokens / totals[0]!.seconds;
const header = [
  'proposer',
  'output tok/s',
  'speed-up',
  'engine steps',
  'tokens per step',
  'draft tokens',
  'acceptance',
];
const rows = names.map((name, i) => {
  const t = totals[i]!;
  const rate = t.tokens / t.seconds;
  return [
    name === 'off' ? 'off (one token per step)' : name === 'self' ? 'draft: the target itself' : name,
    rate.toFixed(1),
    `${(rate / base).toFixed(2)}x`,
    String(t.steps),
    (t.tokens / t.steps).toFixed(2),
    String(t.drafted),
    t.drafted > 0 ? `${((100 * t.accepted) / t.drafted).toFixed(1)}%` : '-',
  ];
});
console.log(header.join(' | '));
for (const r of rows) console.log(r.join(' | '));
appendBenchResult(
  join(projectRoot, 'bench', 'RESULTS.md'),
  {
    name: 'speculative decoding',
    deviceName: target.deviceName,
    command: `node --import tsx bench/speculative.ts ${process.argv.slice(2).join(' ')}`.trim(),
    about: `model ${basename(model)}, ${requests} concurrent requests (${args.prompts} prompts), ${maxTokens} tokens each, temperature ${temperature}, K = ${k}, n-gram ${args['ngram-min']}..${args['ngram-max']}, ${args.rounds} interleaved rounds; speed-up against the first row`,
  },
  header,
  rows,
);
