import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { type GgufValue, gguf } from '../../src/loader/gguf/format.ts';
import { GgufFile, type GgufTensorInfo } from '../../src/loader/gguf/read.ts';
import { type GgufTensorOut, writeGguf } from '../../src/loader/gguf/write.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadModel } from '../../src/models/load.ts';
import type { DType } from '../../src/primitives/host-tensor.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { GGUF_FIXTURES } from '../helpers/golden-cases.ts';
import { cpuLlamaForTests, logSoftmax, teacherForcedSteps } from '../helpers/llama-cpp.ts';
import { argmax, PagedSession } from '../helpers/paged-session.ts';
import {
  type TinyMoe,
  writeTinyArceeFolder,
  writeTinyCohereFolder,
  writeTinyErnieFolder,
  writeTinyExaone4Folder,
  writeTinyGlmFolder,
  writeTinyGptBigCodeFolder,
  writeTinyLlamaAsGranite,
  writeTinyMoeFolder,
  writeTinyNemotronFolder,
  writeTinyOlmoFolder,
  writeTinyPhiFolder,
  writeTinySeedOssFolder,
  writeTinySmollm3Folder,
  writeTinyStablelmFolder,
  writeTinyStarcoder2Folder,
} from '../helpers/random-folders.ts';

/**
 * pagoda and llama.cpp (node-llama-cpp's CPU build) on the same GGUF file, teacher-forced over each golden prompt
 * and its greedy continuation. llama.cpp runs with an F32 KV cache and no flash attention, so what differs is the
 * arithmetic of the matrix products: with F32 weights the log-probabilities agree to 1e-3 (the GELU models, GPT-2,
 * StarCoder2 and Phi-2, to 5e-3: ggml's GELU is a table of F16 values); with F16 weights ggml rounds every activation to F16 before the dot product
 * (relative error 2^-11 per element, summed over hundreds of products and several layers) while pagoda keeps
 * activations in F32, measured at up to 1.2e-2 on these models: 0.03 leaves room without hiding a wrong weight,
 * which moves log-probabilities by whole units.
 */
const TOLERANCE: Record<string, number> = { f32: 1e-3, f16: 0.03 };
const GELU_F32 = 5e-3;
const GELU_MODELS = ['tiny-gpt2', 'tiny-gpt-bigcode', 'tiny-starcoder2', 'tiny-phi'];

const F32_CHECKED = ['tiny-llama-256', 'tiny-qwen2-256', 'tiny-gpt2'];
const out = mkdtempSync(join(tmpdir(), 'pagoda-llama-cpp-'));
const llama = cpuLlamaForTests();

/** `oursFrom`: 'folder' runs pagoda on the checkpoint the file was converted from, llama.cpp on the file. */
async function agree(name: string, dir: string, type: DType, oursFrom: 'gguf' | 'folder' = 'gguf'): Promise<void> {
  const path = join(out, `${name}-${type}.gguf`);
  convertToGguf(dir, path, type);
  await agreeOn(name, path, oursFrom === 'gguf' ? path : dir, dir, type);
}

let converted = 0;
/** The F32 GGUF of the folder at `dir`, written in this run's temporary folder. */
function convertedFrom(dir: string): string {
  const path = join(out, `${basename(dir)}-${++converted}.gguf`);
  convertToGguf(dir, path, 'f32');
  return path;
}

/** pagoda on `oursPath` and llama.cpp on the GGUF at `path`, teacher-forced over the golden prompts in `dir`. */
async function agreeOn(name: string, path: string, oursPath: string, dir: string, type: DType): Promise<void> {
  const ours = loadModel(oursPath, new CpuBackend());
  const theirs = await llama().loadModel({ modelPath: path });
  const tol = type === 'f32' && GELU_MODELS.includes(name) ? GELU_F32 : TOLERANCE[type]!;
  let steps = 0;
  try {
    for await (const { row, want, k } of teacherForcedSteps(ours, theirs, dir)) {
      steps++;
      const [a, b] = [logSoftmax(row), logSoftmax(want)];
      const top = [...want.keys()].sort((x, y) => want[y]! - want[x]!).slice(0, 8);
      // The greedy token must agree wherever llama.cpp's top two are further apart than the tolerance.
      if (b[top[0]!]! - b[top[1]!]! > tol) {
        assert.equal(argmax(row), top[0], `${name} ${type}: top-1 differs at step ${k}`);
      }
      for (const id of top) {
        const d = Math.abs(a[id]! - b[id]!);
        assert.ok(
          d < tol,
          `${name} ${type}: log-probability of token ${id} at step ${k} differs by ${d} (limit ${tol})`,
        );
      }
    }
  } finally {
    await theirs.dispose();
  }
  assert.ok(steps >= 50, `${name}: only ${steps} steps compared`);
}

for (const name of GGUF_FIXTURES) {
  const fixture = modelFixture(name);
  describe(`${name}: pagoda and llama.cpp on the same GGUF`, { skip: fixture.skip }, () => {
    test('F16: top-1 identical wherever the top two are 0.03 apart, top-8 log-probabilities within 0.03', () =>
      agree(name, fixture.path, 'f16'));
    // F32 on the two k-quant-shaped fixtures (GQA; biases) and GPT-2 (its own GELU tolerance) is enough to show exactness.
    test(
      'F32: top-1 identical wherever the top two are 1e-3 apart, top-8 log-probabilities within 1e-3',
      { skip: F32_CHECKED.includes(name) ? false : 'F32 is checked on tiny-llama-256, tiny-qwen2-256 and tiny-gpt2' },
      () => agree(name, fixture.path, 'f32'),
    );
  });
}

/**
 * tiny-llama as Granite: llama.cpp reads the multipliers from the GGUF keys the converter writes, so a key it does not
 * know (or a factor applied in the wrong place) moves every log-probability: pagoda runs the file, and the folder it
 * came from.
 */
const graniteFolder = () =>
  writeTinyLlamaAsGranite(join(out, 'tiny-llama-as-granite'), modelFixture('tiny-llama').path);

describe('granite: pagoda and llama.cpp on the same GGUF', { skip: modelFixture('tiny-llama').skip }, () => {
  test('F32: top-1 identical wherever the top two are 1e-3 apart, top-8 log-probabilities within 1e-3', () =>
    agree('tiny-llama-as-granite', graniteFolder(), 'f32'));
  test('the folder on pagoda, its GGUF on llama.cpp: the same, within 1e-3', () =>
    agree('tiny-llama-as-granite', graniteFolder(), 'f32', 'folder'));
});

describe('olmo2: pagoda on the folder and on its GGUF, llama.cpp on the GGUF', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  for (const generation of [2, 3] as const) {
    const what = generation === 3 ? 'OLMo 3 (a window of 8 on three layers of four)' : 'OLMo 2';
    const folder = () =>
      writeTinyOlmoFolder(join(out, `tiny-olmo${generation}`), generation, modelFixture('tiny-llama').path);
    test(`${what}: top-1 identical where the top two are apart, top-8 log-probabilities within 1e-3`, async () => {
      await agree(`tiny-olmo${generation}`, folder(), 'f32', 'folder');
      await agree(`tiny-olmo${generation}`, folder(), 'f32', 'gguf');
    });
  }
  test('OLMo 3 layer types llama.cpp cannot express are refused in one line', () => {
    const dir = writeTinyOlmoFolder(join(out, 'tiny-olmo3-odd'), 3, modelFixture('tiny-llama').path);
    const path = join(dir, 'config.json');
    const config = JSON.parse(readFileSync(path, 'utf8'));
    config.layer_types = ['full_attention', 'sliding_attention', 'sliding_attention', 'full_attention'];
    writeFileSync(path, JSON.stringify(config));
    assert.throws(() => convertToGguf(dir, join(out, 'odd.gguf'), 'f32'), /layer_types .* cannot be written to GGUF/);
  });
});

describe('exaone4: pagoda on the folder and on its GGUF, llama.cpp on the GGUF', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  const tokenizer = () => modelFixture('tiny-llama').path;
  for (const hybrid of [false, true]) {
    const what = hybrid
      ? 'hybrid (64 layers, a window of 8 on three of every four, the fourth unrotated)'
      : 'every layer full and rotated';
    test(`${what}: top-1 identical where the top two are apart, top-8 log-probabilities within 1e-3`, async () => {
      const name = `tiny-exaone4${hybrid ? '-hybrid' : ''}`;
      const dir = writeTinyExaone4Folder(join(out, name), tokenizer(), hybrid);
      await agree(name, dir, 'f32', 'folder');
      await agree(name, dir, 'f32', 'gguf');
    });
  }
  test('a depth llama.cpp reads the other way is refused in one line', () => {
    const dir = writeTinyExaone4Folder(join(out, 'tiny-exaone4-odd'), tokenizer(), false);
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), sliding_window: 8 }));
    assert.throws(
      () => convertToGguf(dir, join(out, 'odd.gguf'), 'f32'),
      /a sliding window with 4 layers cannot be written to GGUF/,
    );
  });
});

describe('glm4 and chatglm: pagoda on the folder and on its GGUF, llama.cpp on the GGUF', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  const folder = (generation: 1 | 4) =>
    writeTinyGlmFolder(join(out, `tiny-glm${generation}`), modelFixture('tiny-llama').path, generation);
  for (const [generation, what] of [
    [4, 'GLM-4-0414 (glm4)'],
    [1, 'GLM-4-9B (GlmForCausalLM, chatglm)'],
  ] as const) {
    test(`${what}: top-1 identical where the top two are apart, top-8 log-probabilities within 1e-3`, async () => {
      await agree(`tiny-glm${generation}`, folder(generation), 'f32', 'folder');
      await agree(`tiny-glm${generation}`, folder(generation), 'f32', 'gguf');
    });
  }
  test("GLM-4-9B with q/k/v fused as attn_qkv (the chatglm files of ChatGLM's checkpoints, as Ollama's glm4)", async () => {
    const dir = folder(1);
    const fused = join(out, 'tiny-glm1-fused.gguf');
    fuseQkv(convertedFrom(dir), fused);
    await agreeOn('tiny-glm1', fused, fused, dir, 'f32');
  });
});

test('seed_oss (Seed-OSS): pagoda on the folder and on its GGUF, llama.cpp on the GGUF, top-8 within 1e-3', {
  skip: modelFixture('tiny-llama').skip,
}, async () => {
  const dir = writeTinySeedOssFolder(join(out, 'tiny-seed-oss'), modelFixture('tiny-llama').path);
  await agree('tiny-seed-oss', dir, 'f32', 'folder');
  await agree('tiny-seed-oss', dir, 'f32', 'gguf');
});

describe('arcee and ernie4_5: pagoda on the folder and on its GGUF, llama.cpp on the GGUF', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  for (const [name, write] of [
    ['tiny-arcee', writeTinyArceeFolder],
    ['tiny-ernie', writeTinyErnieFolder],
  ] as const) {
    test(`${name}: top-1 identical where the top two are apart, top-8 log-probabilities within 1e-3`, async () => {
      const dir = write(join(out, name), modelFixture('tiny-llama').path);
      await agree(name, dir, 'f32', 'folder');
      await agree(name, dir, 'f32', 'gguf');
    });
  }
});

describe('smollm3: pagoda on the folder and on its GGUF, llama.cpp on the GGUF', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  const folder = (name: string) => writeTinySmollm3Folder(join(out, name), modelFixture('tiny-llama').path);
  test('the fourth layer unrotated: top-1 identical where the top two are apart, top-8 log-probabilities within 1e-3', async () => {
    await agree('tiny-smollm3', folder('tiny-smollm3'), 'f32', 'folder');
    await agree('tiny-smollm3', folder('tiny-smollm3'), 'f32', 'gguf');
  });
  test('rotating every layer instead is a different model (the NoPE layer is not a no-op here)', async () => {
    const dir = folder('tiny-smollm3-all-rotated');
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), no_rope_layers: [1, 1, 1, 1] }));
    await assert.rejects(agreeOn('tiny-smollm3', convertedFrom(folder('tiny-smollm3')), dir, dir, 'f32'), /differs/);
  });
  test('no_rope_layers llama.cpp cannot express are refused in one line', () => {
    const dir = folder('tiny-smollm3-odd');
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), no_rope_layers: [0, 1, 1, 1] }));
    assert.throws(
      () => convertToGguf(dir, join(out, 'odd.gguf'), 'f32'),
      /no_rope_layers .* cannot be written to GGUF/,
    );
  });
});

describe('starcoder (GPTBigCode), starcoder2, stablelm, nemotron, phi2, command-r and command-r7b: pagoda on the folder and on its GGUF, llama.cpp on the GGUF', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  const tokenizer = () => modelFixture('tiny-llama').path;
  for (const [name, write] of [
    ['tiny-gpt-bigcode', (dir: string) => writeTinyGptBigCodeFolder(dir, tokenizer())],
    ['tiny-starcoder2', (dir: string) => writeTinyStarcoder2Folder(dir, tokenizer())],
    ['tiny-stablelm', (dir: string) => writeTinyStablelmFolder(dir, tokenizer())],
    ['tiny-nemotron', (dir: string) => writeTinyNemotronFolder(dir, tokenizer())],
    ['tiny-phi', (dir: string) => writeTinyPhiFolder(dir, tokenizer())],
    ['tiny-cohere', (dir: string) => writeTinyCohereFolder(dir, tokenizer())],
    ['tiny-cohere2', (dir: string) => writeTinyCohereFolder(dir, tokenizer(), 2)],
  ] as const) {
    const limit = GELU_MODELS.includes(name) ? "5e-3 (ggml's GELU table)" : '1e-3';
    test(`${name}: top-1 identical where the top two are apart, top-8 log-probabilities within ${limit}`, async () => {
      const dir = write(join(out, name));
      await agree(name, dir, 'f32', 'folder');
      await agree(name, dir, 'f32', 'gguf');
    });
  }
  test('Command R7B with its fourth layer sliding and rotated too is a different model', async () => {
    const dir = writeTinyCohereFolder(join(out, 'tiny-cohere2-all-sliding'), tokenizer(), 2);
    const path = join(dir, 'config.json');
    const config = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...config, layer_types: Array(4).fill('sliding_attention') }));
    const file = convertedFrom(writeTinyCohereFolder(join(out, 'tiny-cohere2-again'), tokenizer(), 2));
    await assert.rejects(agreeOn('tiny-cohere2', file, dir, dir, 'f32'), /differs/);
  });
  test("a Command-R config without logit_scale takes CohereConfig's 0.0625, in pagoda and in the file it converts to", async () => {
    const dir = writeTinyCohereFolder(join(out, 'tiny-cohere-default-scale'), tokenizer());
    const path = join(dir, 'config.json');
    const { logit_scale: _, ...config } = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify(config));
    await agree('tiny-cohere-default-scale', dir, 'f32', 'folder');
    const file = GgufFile.open(join(out, 'tiny-cohere-default-scale-f32.gguf'));
    assert.equal(file.value('command-r.logit_scale'), 0.0625);
    file.close();
  });
});

/** What `rewriteGguf` changes in its copy. */
interface GgufEdit {
  /** The architecture the copy is stored as: `general.architecture` and every `{arch}.*` key renamed to it. */
  arch?: string;
  /** Keys added under the copy's architecture. */
  keys?: readonly (readonly [string, GgufValue])[];
  /** Keys set as they are named (outside the architecture's, as `tokenizer.ggml.*`). */
  global?: readonly (readonly [string, GgufValue])[];
  /** What a stored tensor becomes (none, one or several); null keeps it as it is. */
  tensor?: (t: GgufTensorInfo, file: GgufFile) => GgufTensorOut[] | null;
}

/** A copy of the GGUF at `from`, written to `to`, with `edit`'s changes. */
function rewriteGguf(from: string, to: string, edit: GgufEdit): void {
  const file = GgufFile.open(from);
  try {
    const stored = String(file.value('general.architecture'));
    const arch = edit.arch ?? stored;
    const metadata = new Map(
      [...file.metadata].map(([key, v]) => [
        key.startsWith(`${stored}.`) ? `${arch}.${key.slice(stored.length + 1)}` : key,
        v,
      ]),
    );
    metadata.set('general.architecture', gguf.str(arch));
    for (const [key, v] of edit.keys ?? []) metadata.set(`${arch}.${key}`, v);
    for (const [key, v] of edit.global ?? []) metadata.set(key, v);
    const copy = (t: GgufTensorInfo): GgufTensorOut => ({
      name: t.name,
      shape: [...t.dims].reverse(),
      dtype: file.tensorAt(t).dtype,
      bytes: () => file.readBytes(t),
    });
    writeGguf(
      to,
      metadata,
      [...file.tensors.values()].flatMap((t) => edit.tensor?.(t, file) ?? [copy(t)]),
    );
  } finally {
    file.close();
  }
}

/**
 * The GGUF at `path` with each layer's q, k and v (weights and biases) stored fused as `attn_qkv`, as llama.cpp wrote
 * Phi-2 from its first checkpoints (the files Ollama's phi carries).
 */
function fuseQkv(path: string, fused: string): void {
  rewriteGguf(path, fused, {
    tensor: (t, file) => {
      const part = /^(blk\.\d+)\.attn_([qkv])\.(weight|bias)$/.exec(t.name);
      if (!part) return null;
      if (part[2] !== 'q') return [];
      const pieces = ['q', 'k', 'v'].map((x) => file.tensors.get(`${part[1]}.attn_${x}.${part[3]}`)!);
      const rows = pieces.reduce((a, p) => a + p.dims.at(-1)!, 0);
      return [
        {
          name: `${part[1]}.attn_qkv.${part[3]}`,
          shape: part[3] === 'weight' ? [rows, t.dims[0]!] : [rows],
          dtype: 'f32',
          bytes: () => Buffer.concat(pieces.map((p) => file.readBytes(p))),
        },
      ];
    },
  });
}

test('Phi-2 with q/k/v fused as attn_qkv (its early GGUFs): pagoda and llama.cpp agree', {
  skip: modelFixture('tiny-llama').skip,
}, async () => {
  const dir = writeTinyPhiFolder(join(out, 'tiny-phi-fused'), modelFixture('tiny-llama').path);
  const separate = join(out, 'tiny-phi-separate.gguf');
  const fused = join(out, 'tiny-phi-fused.gguf');
  convertToGguf(dir, separate, 'f32');
  fuseQkv(separate, fused);
  const written = GgufFile.open(fused);
  assert.ok(written.tensors.has('blk.0.attn_qkv.weight') && !written.tensors.has('blk.0.attn_q.weight'));
  written.close();
  await agreeOn('tiny-phi', fused, fused, dir, 'f32');
});

describe("GGUF architectures llama.cpp writes in Llama's, Qwen2's or Qwen3's layout: pagoda and llama.cpp agree", {
  skip: modelFixture('tiny-llama').skip || modelFixture('tiny-qwen2').skip || modelFixture('tiny-qwen3').skip,
}, () => {
  // internlm2 and mistral3: q/k rows interleaved as Llama's; exaone: left as they are and rotated NeoX-style; qwen2vl
  // (Qwen2-VL's and Qwen2.5-VL's language models) and qwen3vl: Qwen2's and Qwen3's, their M-RoPE sections over text
  // positions alone.
  const cases: [arch: string, fixture: string, keys: [string, GgufValue][]][] = [
    ['internlm2', 'tiny-llama', []],
    ['mistral3', 'tiny-llama', []],
    ['exaone', 'tiny-llama', []],
    ['qwen2vl', 'tiny-qwen2', [['rope.dimension_sections', gguf.array('i32', [2, 3, 3, 0])]]],
    ['qwen3vl', 'tiny-qwen3', [['rope.dimension_sections', gguf.array('i32', [6, 5, 5, 0])]]],
  ];
  for (const [arch, fixture, keys] of cases) {
    test(`${arch} (${fixture}'s weights under its name)`, async () => {
      const dir = modelFixture(fixture).path;
      const relabeled = join(out, `tiny-${arch}.gguf`);
      rewriteGguf(convertedFrom(dir), relabeled, { arch, keys });
      await agreeOn(`tiny-${arch}`, relabeled, relabeled, dir, 'f32');
    });
  }
});

/**
 * As Ollama's converter writes a vision-language model: the language model's keys under its own architecture name, an
 * empty rope scaling type (and factor 0) where the model has none, the vision tower's and projector's tensors beside
 * the language model's (`v.*`, `mm.*`): pagoda reads the language model alone, the same logits as without them.
 */
describe("Ollama's vision-language GGUFs: the language model alone", {
  skip: modelFixture('tiny-llama').skip || modelFixture('tiny-qwen2').skip,
}, () => {
  for (const [arch, fixture, as] of [
    ['mistral3', 'tiny-llama', 'mistral3'],
    ['qwen25vl', 'tiny-qwen2', 'qwen2'],
  ] as const) {
    test(`${arch}: the same logits as ${fixture}'s file as ${as}`, () => {
      const plain = convertedFrom(modelFixture(fixture).path);
      const ollama = join(out, `tiny-${arch}-ollama.gguf`);
      const random = mulberry32(7);
      const vision = (name: string): GgufTensorOut => {
        const values = Float32Array.from({ length: 64 * 64 }, () => random() - 0.5);
        return { name, shape: [64, 64], dtype: 'f32', bytes: () => new Uint8Array(values.buffer) };
      };
      rewriteGguf(plain, ollama, {
        arch,
        keys: [
          ['rope.scaling.type', gguf.str('')],
          ['rope.scaling.factor', gguf.f32(0)],
        ],
        tensor: (t, file) =>
          t.name === 'output_norm.weight'
            ? [
                { name: t.name, shape: [...t.dims].reverse(), dtype: 'f32', bytes: () => file.readBytes(t) },
                vision('v.blk.0.attn_q.weight'),
                vision('mm.linear_1.weight'),
              ]
            : null,
      });
      const relabeled = join(out, `tiny-${arch}-as-${as}.gguf`);
      rewriteGguf(plain, relabeled, { arch: as });
      const prompt = [1, 450, 496, 173, 701];
      const logits = (path: string) => [
        ...new PagedSession(loadModel(path, new CpuBackend())).step([{ seq: 0, tokens: prompt }])[0]!,
      ];
      assert.deepEqual(logits(ollama), logits(relabeled));
    });
  }
});

/**
 * The mixture-of-experts families, each written by pagoda's converter (experts stacked as llama.cpp stores them, from
 * one tensor per expert or from fused ones) and read back: top-k routing that picked other experts, or weights in the
 * wrong expert's place, moves whole log-probabilities.
 */
describe('MoE families: pagoda on the folder and on its GGUF, llama.cpp on the GGUF', {
  skip: modelFixture('tiny-llama').skip,
}, () => {
  const families: readonly [TinyMoe, string][] = [
    ['olmoe', 'OLMoE (q/k normed across heads)'],
    ['mixtral', 'Mixtral (stored as llama)'],
    ['qwen2moe', 'Qwen2-MoE (a gated shared expert)'],
    ['qwen3moe', 'Qwen3-MoE'],
    ['qwen3moe-fused', "Qwen3-MoE, experts fused as transformers 5's"],
    ['granitemoe', "Granite 3 MoE (its fused experts, Granite's multipliers)"],
    ['granitemoeshared', 'GraniteMoeShared (an ungated shared expert, fused as the experts)'],
  ];
  for (const [family, what] of families) {
    test(`${what}: top-1 identical where the top two are apart, top-8 log-probabilities within 1e-3`, async () => {
      const dir = writeTinyMoeFolder(join(out, `tiny-${family}`), family, modelFixture('tiny-llama').path);
      await agree(`tiny-${family}`, dir, 'f32', 'folder');
      await agree(`tiny-${family}`, dir, 'f32', 'gguf');
    });
  }
  test("qwen3vlmoe (Qwen3-VL's MoE language model): the Qwen3-MoE file under its name", async () => {
    const dir = writeTinyMoeFolder(join(out, 'tiny-qwen3moe-vl'), 'qwen3moe', modelFixture('tiny-llama').path);
    const relabeled = join(out, 'tiny-qwen3vlmoe.gguf');
    // Sections whose interleave gives every dimension one of the three text positions (llama.cpp rotates a dimension
    // it leaves to the fourth by that section's position instead, as Qwen3-VL's transformers code never does).
    rewriteGguf(convertedFrom(dir), relabeled, {
      arch: 'qwen3vlmoe',
      keys: [['rope.dimension_sections', gguf.array('i32', [3, 3, 2, 0])]],
    });
    await agreeOn('tiny-qwen3vlmoe', relabeled, relabeled, dir, 'f32');
  });
  test('routing llama.cpp cannot express is refused in one line', () => {
    const dir = writeTinyMoeFolder(join(out, 'tiny-qwen3moe-odd'), 'qwen3moe', modelFixture('tiny-llama').path);
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), norm_topk_prob: false }));
    assert.throws(
      () => convertToGguf(dir, join(out, 'odd.gguf'), 'f32'),
      /norm_topk_prob false cannot be written to GGUF \(llama.cpp's qwen3moe always renormalises/,
    );
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), mlp_only_layers: [0] }));
    assert.throws(() => convertToGguf(dir, join(out, 'odd.gguf'), 'f32'), /mlp_only_layers \[0\] cannot be written/);
  });
});

/** Texts for tokenizer agreement: llama.cpp's own hard cases plus digits, contractions and whitespace runs. */
function tokenizerTexts(): string[] {
  const vocabCases = sharedFixture('gguf/ggml-vocab-gpt-2.gguf.inp');
  const own = vocabCases.skip ? [] : readFileSync(vocabCases.path, 'utf8').split('\n__ggml_vocab_test__\n');
  return [
    ...own,
    "I'M HERE, you'RE there",
    '1234567 12 3.14159',
    'tabs\t\tand\n\n\nnewlines   ',
    'Ünïcödé 日本語 🦙🦙',
  ];
}

/**
 * `tokenizer.ggml.pre` names llama.cpp reads as another name's rules (EXAONE 3.5's and 4's, CodeShell's, Minerva's,
 * Megrez's, Trillion's): tiny-gpt2's converted vocabulary relabeled with each, tokenized by pagoda and llama.cpp.
 */
describe('pre-tokenizer names that alias other rules: pagoda and llama.cpp agree', {
  skip: modelFixture('tiny-gpt2').skip,
}, () => {
  for (const pre of ['exaone', 'exaone4', 'codeshell', 'minerva-7b', 'megrez', 'trillion']) {
    test(pre, async () => {
      const base = join(out, `tokenizer-for-${pre}.gguf`);
      const path = join(out, `tokenizer-${pre}.gguf`);
      convertToGguf(modelFixture('tiny-gpt2').path, base, 'f32');
      rewriteGguf(base, path, { global: [['tokenizer.ggml.pre', gguf.str(pre)]] });
      const ours = loadTokenizer(path);
      const model = await llama().loadModel({ modelPath: path });
      try {
        for (const text of tokenizerTexts()) {
          const want = [...model.tokenize(text, true)];
          assert.deepEqual(ours.encode(text, { addSpecialTokens: false }), want, JSON.stringify(text));
        }
      } finally {
        await model.dispose();
      }
    });
  }
});

/** A copy of tiny-qwen2 whose tokenizer splits as Llama 3's does (digits in threes, whole words first). */
function llama3StyleFolder(): string {
  const dir = join(out, 'tiny-llama3-tokenizer');
  cpSync(modelFixture('tiny-qwen2').path, dir, { recursive: true });
  const path = join(dir, 'tokenizer.json');
  const json = JSON.parse(readFileSync(path, 'utf8'));
  const split = json.pre_tokenizer.pretokenizers[0].pattern;
  split.Regex = split.Regex.replace('|\\p{N}|', '|\\p{N}{1,3}|');
  json.model.ignore_merges = true;
  writeFileSync(path, JSON.stringify(json));
  return dir;
}

const qwen2 = modelFixture('tiny-qwen2');
describe('converted tokenizers: Hugging Face, pagoda on the GGUF and llama.cpp agree', { skip: qwen2.skip }, () => {
  for (const [style, pre, folder] of [
    ['qwen2', 'qwen2', () => qwen2.path],
    ['llama3', 'llama-bpe', llama3StyleFolder],
    ['gpt-2', 'gpt-2', () => modelFixture('tiny-gpt2').path],
    ['sentencepiece', undefined, () => modelFixture('tiny-llama').path],
  ] as const) {
    test(`${style}-style (tokenizer.ggml.pre = ${pre ?? 'none: llama model'})`, async () => {
      const dir = folder();
      const path = join(out, `tokenizer-${style}.gguf`);
      convertToGguf(dir, path, 'f32');
      const file = GgufFile.open(path);
      assert.equal(file.value('tokenizer.ggml.pre'), pre);
      file.close();
      const hf = loadTokenizer(dir);
      const ours = loadTokenizer(path);
      const model = await llama().loadModel({ modelPath: path });
      try {
        for (const text of tokenizerTexts()) {
          const want = hf.encode(text, { addSpecialTokens: false });
          assert.deepEqual(ours.encode(text, { addSpecialTokens: false }), want, JSON.stringify(text));
          assert.deepEqual([...model.tokenize(text, true)], want, `llama.cpp: ${JSON.stringify(text)}`);
        }
      } finally {
        await model.dispose();
      }
    });
  }
});
