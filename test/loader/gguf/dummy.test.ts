import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuBackend } from '../../../src/backend/cpu/backend.ts';
import { logSoftmax } from '../../../src/engine/sampling.ts';
import { dummyGguf } from '../../../src/loader/gguf/dummy.ts';
import { GgufFile } from '../../../src/loader/gguf/read.ts';
import { loadModel } from '../../../src/models/load.ts';
import { parseQuantization } from '../../../src/primitives/quant/mix.ts';
import { UserError } from '../../../src/util/errors.ts';
import { sharedFixture } from '../../helpers/fixtures.ts';
import { cpuLlamaForTests } from '../../helpers/llama-cpp.ts';
import { PagedSession } from '../../helpers/paged-session.ts';

const vocab = sharedFixture('tokenizers/llama2');
const dir = mkdtempSync(join(tmpdir(), 'pagoda-dummy-gguf-'));
// A Llama shape whose widths take k-quant blocks, with the llama2 fixture vocabulary padded from 32,000 to 32,128.
const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 32128,
  hidden_size: 256,
  intermediate_size: 512,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
};
writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
const file = join(dir, 'dummy-q4_k_m.gguf');
const llama = cpuLlamaForTests();

/** llama.cpp's top-8 log-probabilities after `ids` on the GGUF at `path`, beside pagoda's. */
async function topEight(path: string, ids: number[], ours: Float32Array): Promise<[number, number][]> {
  const theirs = await llama().loadModel({ modelPath: path });
  const ctx = await theirs.createContext({ contextSize: 64, threads: 1 });
  const res = await ctx
    .getSequence()
    .controlledEvaluate(
      ids.map((t, i) => (i === ids.length - 1 ? [t, { generateNext: { probabilities: true } }] : t)) as never,
    );
  const probs = (res.at(-1) as { next: { probabilities: Map<number, number> } }).next.probabilities;
  const lp = logSoftmax(ours);
  const top = [...probs.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  await ctx.dispose();
  await theirs.dispose();
  return top.map(([id, p]) => [lp[id]!, Math.log(p)]);
}

test('pagoda quantize --load-format dummy writes random Q4_K_M blocks that pagoda and llama.cpp both run', {
  skip: vocab.skip,
}, async () => {
  const out = execFileSync(
    process.execPath,
    ['bin/pagoda.mjs', 'quantize', '--load-format', 'dummy', '--vocab', vocab.path, dir, file, '--type', 'Q4_K_M'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  assert.match(out, /Q4_K_M, 21 tensors \(\d+ Q4_K, \d+ Q6_K\)/);
  const gguf = GgufFile.open(file);
  const tokens = gguf.value('tokenizer.ggml.tokens') as string[];
  assert.equal(tokens.length, 32128);
  assert.equal(tokens[32127], '[PAD32127]');
  assert.equal(gguf.tensorAt(gguf.tensors.get('output.weight')!).dtype, 'q6_k');
  assert.equal(gguf.tensorAt(gguf.tensors.get('blk.1.attn_q.weight')!).dtype, 'q4_k');
  gguf.close();

  const ids = [1, 450, 4996, 17354, 1701];
  const ours = new PagedSession(loadModel(file, new CpuBackend({ threads: 1 })), 16).step([
    { seq: 0, tokens: ids, logits: 'last' },
  ])[0]!;
  assert.equal(ours.length, 32128);
  assert.ok(ours.every(Number.isFinite));
  // Random weights leave near-ties at the top (about 0.005 apart), so compare log-probabilities, not the argmax.
  for (const [mine, theirs] of await topEight(file, ids, ours)) {
    assert.ok(Math.abs(mine - theirs) < 0.03, `${mine} here, ${theirs} in llama.cpp`);
  }
});

test('a Qwen3-MoE shape: its experts stacked in random Q4_K_M blocks (routers in F32), run by pagoda and llama.cpp', {
  skip: vocab.skip,
}, async () => {
  const moeDir = mkdtempSync(join(tmpdir(), 'pagoda-dummy-moe-'));
  const moe = {
    ...config,
    architectures: ['Qwen3MoeForCausalLM'],
    model_type: 'qwen3_moe',
    head_dim: 64,
    num_experts: 4,
    num_experts_per_tok: 2,
    moe_intermediate_size: 256,
    norm_topk_prob: true,
  };
  writeFileSync(join(moeDir, 'config.json'), JSON.stringify(moe));
  const path = join(moeDir, 'moe-q4_k_m.gguf');
  const out = execFileSync(
    process.execPath,
    ['bin/pagoda.mjs', 'quantize', '--load-format', 'dummy', '--vocab', vocab.path, moeDir, path, '--type', 'q4_k_m'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  assert.match(out, /Q4_K_M, \d+ tensors \(\d+ Q4_K, \d+ Q6_K\)/);
  const gguf = GgufFile.open(path);
  assert.deepEqual(gguf.tensorAt(gguf.tensors.get('blk.1.ffn_gate_exps.weight')!).shape, [4, 256, 256]);
  assert.equal(gguf.tensorAt(gguf.tensors.get('blk.1.ffn_gate_exps.weight')!).dtype, 'q4_k');
  // ffn_down on use_more_bits layers (the last of two) in Q6_K, experts as dense MLPs.
  assert.equal(gguf.tensorAt(gguf.tensors.get('blk.1.ffn_down_exps.weight')!).dtype, 'q6_k');
  assert.equal(gguf.tensorAt(gguf.tensors.get('blk.0.ffn_down_exps.weight')!).dtype, 'q4_k');
  // The routers random as the matrices are (all ones would give every expert the same score).
  const router = gguf.tensorAt(gguf.tensors.get('blk.0.ffn_gate_inp.weight')!);
  assert.equal(router.dtype, 'f32');
  assert.ok(new Set(new Float32Array(router.bytes.slice().buffer)).size > 100, 'router values vary');
  assert.equal(gguf.value('qwen3moe.expert_count'), 4);
  gguf.close();
  const ids = [1, 450, 4996, 17354, 1701];
  const ours = new PagedSession(loadModel(path, new CpuBackend({ threads: 1 })), 16).step([
    { seq: 0, tokens: ids, logits: 'last' },
  ])[0]!;
  for (const [mine, theirs] of await topEight(path, ids, ours)) {
    assert.ok(Math.abs(mine - theirs) < 0.03, `${mine} here, ${theirs} in llama.cpp`);
  }
});

test('--load-format dummy refuses in one line the shapes it does not write (a shared expert, GPT-2)', () => {
  for (const [extra, what] of [
    [
      {
        architectures: ['Qwen2MoeForCausalLM'],
        model_type: 'qwen2_moe',
        num_experts: 4,
        num_experts_per_tok: 2,
        moe_intermediate_size: 256,
        shared_expert_intermediate_size: 512,
      },
      /Qwen2MoeForCausalLM" with a shared expert/,
    ],
    [{ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' }, /not "GPT2LMHeadModel"$/],
  ] as const) {
    const other = mkdtempSync(join(tmpdir(), 'pagoda-dummy-refused-'));
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...config, ...extra }));
    assert.throws(
      () => dummyGguf(other, join(other, 'x.gguf'), parseQuantization('q4_k_m', 'test'), other),
      (e: Error) => e instanceof UserError && what.test(e.message),
    );
  }
});

test('--load-format dummy needs --vocab, and --vocab needs it', () => {
  for (const args of [
    ['--load-format', 'dummy'],
    ['--vocab', dir],
  ]) {
    const run = () =>
      execFileSync(process.execPath, ['bin/pagoda.mjs', 'quantize', ...args, dir, file, '--type', 'q8_0'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    assert.throws(run, (e: { stderr: string }) => /--vocab DIR .* goes with --load-format dummy/.test(e.stderr));
  }
});
