/**
 * Structured output's per-step cost without a GPU: 64 matchers of bench/structured-output.ts's schema over GPT-2's
 * vocabulary padded to Llama 3's width (128,256), as the GPU bench runs them. Two measurements:
 * - xgrammar alone on this thread: one `getNextTokenBitmask` per matcher per step (mean and worst, ms), told of the
 *   padded width and of the tokenizer's ids only (as the grammar workers are);
 * - the grammar service as the step loop uses it: flush the step's tokens, stand in for the forward by blocking this
 *   thread for the GPU's decode step (6.7 ms at 64 rows), then wait for every mask; the time waited per step is what
 *   the grammar adds to a step.
 * Tokens are drawn uniformly from each mask (a random model); a finished matcher starts over.
 * Run: node --import tsx bench/grammar-masks.ts [--workers N] [--steps N] [--forward-ms MS]   (appends to RESULTS.md)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { Rng } from '../src/engine/sequence.ts';
import { compileSpec } from '../src/grammar/compile.ts';
import { GrammarService } from '../src/grammar/grammar-service.ts';
import type { SequenceGrammar } from '../src/grammar/sequence-grammar.ts';
import { SlotState } from '../src/grammar/shared-state.ts';
import type { GrammarSpec } from '../src/grammar/spec.ts';
import { xgrammar } from '../src/grammar/xgrammar.ts';
import { projectRoot, sharedFixture } from '../test/helpers/fixtures.ts';
import { ggufVocabulary } from './gguf-vocab.ts';
import { SCHEMA } from './structured-schema.ts';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string' },
    steps: { type: 'string', default: '100' },
    'forward-ms': { type: 'string', default: '6.7' },
  },
});
const MATCHERS = 64;
const VOCAB_SIZE = 128_256;
const FORWARD_MS = Number(args['forward-ms']);
const STEPS = Number(args.steps);
const EOS = 50_256;
const spec: GrammarSpec = { type: 'json_schema', schema: SCHEMA };

const vocab = ggufVocabulary(sharedFixture('gguf/ggml-vocab-gpt-2.gguf').path);
const rng = new Rng(1234, 0);
const lastWord = (vocab.tokens.length - 1) >> 5;
const lastBits = vocab.tokens.length % 32 === 0 ? -1 : (1 << (vocab.tokens.length % 32)) - 1;

/** A uniform draw among the mask's set bits of tokenizer ids (xgrammar may set bits past them in its last word). */
function draw(mask: Int32Array): number {
  const word = (w: number) => (w < lastWord ? mask[w]! : w === lastWord ? mask[w]! & lastBits : 0);
  let count = 0;
  for (let w = 0; w <= lastWord; w++) count += popcount(word(w));
  let k = Math.floor(rng.next() * count);
  for (let w = 0; ; w++) {
    const n = popcount(word(w));
    if (k >= n) {
      k -= n;
      continue;
    }
    for (let b = 0; ; b++) if ((word(w) >>> b) & 1 && k-- === 0) return w * 32 + b;
  }
}

function popcount(v: number): number {
  let x = v - ((v >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

const ms = (v: number) => v.toFixed(2);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** xgrammar alone over a vocabulary `size` wide: per-mask times over STEPS steps of MATCHERS matchers. */
async function xgrammarAlone(size: number): Promise<string[]> {
  const x = xgrammar();
  const info = await x.TokenizerInfo.createTokenizerInfo(vocab.tokens, vocab.vocabType, false, size, [EOS]);
  const compiler = await x.GrammarCompiler.createGrammarCompiler(info);
  const grammar = await compileSpec(compiler, spec);
  const matchers = await Promise.all(
    Array.from({ length: MATCHERS }, () => x.GrammarMatcher.createGrammarMatcher(grammar, [EOS])),
  );
  const times: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    for (const m of matchers) {
      const t0 = performance.now();
      const mask = await m.getNextTokenBitmask();
      times.push(performance.now() - t0);
      m.acceptToken(draw(mask));
      if (m.isTerminated()) m.reset();
    }
  }
  return [`xgrammar alone, vocabulary size ${size}`, ms(mean(times)), ms(Math.max(...times)), '', ''];
}

/** The service as the step loop drives it: time waited for the step's masks after a forward's worth of blocking. */
async function service(workers: number | undefined): Promise<string[]> {
  const svc = new GrammarService({
    vocabulary: () => vocab,
    vocabSize: VOCAB_SIZE,
    stopTokenIds: [EOS],
    capacity: MATCHERS,
    workers,
  });
  const key = await svc.compile(spec);
  const open = () => svc.open(key, [EOS]);
  const seqs: SequenceGrammar[] = Array.from({ length: MATCHERS }, open);
  const block = new Int32Array(new SharedArrayBuffer(4));
  const waits: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    svc.flush();
    Atomics.wait(block, 0, 0, FORWARD_MS);
    const t0 = performance.now();
    const states = seqs.map((s) => s.state());
    waits.push(performance.now() - t0);
    seqs.forEach((s, i) => {
      if (states[i] === SlotState.Running) s.accept(draw(s.mask()));
      else {
        s.release();
        seqs[i] = open();
      }
    });
  }
  const load = svc.load.join('/');
  await svc.close();
  const name = `service, matchers per worker ${load}, wait after a ${FORWARD_MS} ms forward`;
  return [name, '', '', ms(mean(waits.slice(5))), ms(Math.max(...waits.slice(5)))];
}

const header = ['measurement', 'per mask mean (ms)', 'per mask worst (ms)', 'wait per step mean (ms)', 'worst'];
const rows = [
  await xgrammarAlone(VOCAB_SIZE),
  await xgrammarAlone(vocab.tokens.length),
  await service(args.workers === undefined ? undefined : Number(args.workers)),
];
console.log(header.join(' | '));
for (const r of rows) console.log(r.join(' | '));
appendBenchResult(
  join(projectRoot, 'bench', 'RESULTS.md'),
  {
    name: 'grammar masks per step',
    deviceName: 'CPU',
    command: `node --import tsx bench/grammar-masks.ts ${process.argv.slice(2).join(' ')}`.trim(),
    about: `${MATCHERS} matchers of the structured-output bench's schema, GPT-2 vocabulary padded to ${VOCAB_SIZE}, ${STEPS} steps, uniform draws`,
  },
  header,
  rows,
);
