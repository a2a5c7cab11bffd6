/**
 * FP8 weight quality (`--quantization fp8`): each model with FP8 decoder matrices against the same model without,
 * teacher-forced over its own stories (sampled at temperature 1 from BOS by the f32 model on the CPU). Prefill rows
 * (one step, logits at every position: the FP8 GEMM on CUDA) and decode rows (one token per step: the FP8 GEMV) are
 * counted apart; both quantize activations per token to e4m3. On the CPU the FP8 path is its twin (test/helpers/fp8-cpu.ts) against
 * f32; on CUDA (compute capability 8.9+) the device's FP8 path against bf16. A matrix whose sides are not multiples
 * of 16 stays 16-bit on CUDA (stories260K's MLP, width 172); the table says how many matrices were FP8.
 * stories260K is a trained model; the tiny-*-256 fixtures have random weights, whose near-ties make their top-1 noisy.
 * Usage: npx tsx bench/fp8-weights-quality.ts [cpu] [cuda]   Prints the table and appends it to bench/RESULTS.md.
 */
import { join } from 'node:path';
import type { Backend, HostTensor, Tensor, WeightLoadOptions } from '../src/backend/backend.ts';
import { CpuBackend } from '../src/backend/cpu/backend.ts';
import { CudaBackend } from '../src/backend/cuda/backend.ts';
import { Fp8CudaTensor } from '../src/backend/cuda/fp8.ts';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { loadModel } from '../src/models/load.ts';
import type { Model } from '../src/models/model.ts';
import { FP8_QUANTIZATION } from '../src/primitives/quant/mix.ts';
import { markdownTable } from '../src/util/markdown.ts';
import { modelFixture } from '../test/helpers/fixtures.ts';
import { Fp8Cpu } from '../test/helpers/fp8-cpu.ts';
import { relL2 } from '../test/helpers/gpu.ts';
import { ownStories } from '../test/helpers/kv-cache-agreement.ts';
import { argmax, PagedSession } from '../test/helpers/paged-session.ts';

const STORIES = 8;
const LENGTH = 256;

/** The CUDA backend, counting the matrices it stores as FP8. */
class CountingCuda extends CudaBackend {
  fp8Matrices = 0;
  override loadWeight(w: HostTensor, opts?: WeightLoadOptions): Tensor {
    const t = super.loadWeight(w, opts);
    if (t instanceof Fp8CudaTensor) this.fp8Matrices++;
    return t;
  }
}

/** Logit rows of every story: teacher-forced in one prefill each (`prefill`), or one token per step. */
function logits(model: Model, stories: number[][], mode: 'prefill' | 'decode'): Float32Array[] {
  const rows: Float32Array[] = [];
  for (const story of stories) {
    const s = new PagedSession(model, 16, Math.ceil(story.length / 16));
    const copy = (r: Float32Array[]) => rows.push(...r.map((x) => Float32Array.from(x)));
    if (mode === 'prefill') copy(s.step([{ seq: 0, tokens: story.slice(0, -1), logits: 'all' }]));
    else for (let i = 0; i < story.length - 1; i++) copy(s.step([{ seq: 0, tokens: [story[i]!] }]));
  }
  return rows;
}

const wanted = process.argv.slice(2);
const runs = (wanted.length ? wanted : ['cpu', 'cuda']) as ('cpu' | 'cuda')[];
const header = ['model', 'backend', 'FP8 matrices', 'rows', 'steps', 'top-1 = reference', 'logits rel L2'];
const table: string[][] = [];
const started = performance.now();
let deviceName = 'CPU';
for (const name of ['stories260K', 'tiny-llama-256', 'tiny-qwen2-256']) {
  const fixture = modelFixture(name);
  if (fixture.skip) {
    console.error(`${name}: ${fixture.skip}`);
    continue;
  }
  const f32 = loadModel(fixture.path, new CpuBackend({ threads: 1 }));
  const stories = ownStories(f32, 1, STORIES, Math.min(LENGTH, f32.config.maxPositionEmbeddings));
  for (const run of runs) {
    let reference: Model;
    let fp8: Model;
    let count: () => number;
    if (run === 'cpu') {
      const twin = new Fp8Cpu();
      reference = f32;
      fp8 = loadModel(fixture.path, twin, { quantization: FP8_QUANTIZATION });
      count = () => twin.fp8.length;
    } else {
      const cuda = new CountingCuda({ dtype: 'bf16', graphs: false });
      if (!cuda.fp8Weights) throw new Error(`${cuda.ctx.drv.info.name} has no FP8 (compute capability < 8.9)`);
      deviceName = cuda.ctx.drv.info.name;
      reference = loadModel(fixture.path, new CudaBackend({ dtype: 'bf16', graphs: false }) as Backend);
      fp8 = loadModel(fixture.path, cuda, { quantization: FP8_QUANTIZATION });
      count = () => cuda.fp8Matrices;
    }
    for (const mode of ['prefill', 'decode'] as const) {
      const want = logits(reference, stories, mode);
      const got = logits(fp8, stories, mode);
      const same = got.filter((r, i) => argmax(r) === argmax(want[i]!)).length;
      const e = relL2(
        got.flatMap((r) => [...r]),
        want.flatMap((r) => [...r]),
      );
      const ref = run === 'cpu' ? 'f32 (CPU twin)' : 'bf16 (CUDA)';
      const steps = String(got.length);
      table.push([
        name,
        ref,
        String(count()),
        mode,
        steps,
        `${((100 * same) / got.length).toFixed(1)}%`,
        e.toExponential(2),
      ]);
    }
  }
}
console.log(markdownTable(header, table));
appendBenchResult(
  join(import.meta.dirname, 'RESULTS.md'),
  {
    name: 'FP8 weight quality (--quantization fp8 against 16/32-bit weights)',
    deviceName,
    command: `npx tsx bench/fp8-weights-quality.ts ${runs.join(' ')}`,
    about: `${STORIES} own stories of up to ${LENGTH} tokens per model, teacher-forced; ${((performance.now() - started) / 1000).toFixed(0)} s`,
  },
  header,
  table,
);
