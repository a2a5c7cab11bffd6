/**
 * Weight loading speed: writes a checkpoint of a benchmark shape (random bf16 safetensors, sharded at 4 GiB as
 * transformers saves them), reads every shard once (the warm page cache's own speed: the baseline), then times
 * pagoda loading it onto a backend, and transformers' from_pretrained where Python has it, in the same call.
 * Usage: npx tsx bench/load.ts [--config DIR] [--device cpu|cuda] [--out DIR] [--runs N] [--keep] [--tokenizer FILE]
 *   [--dtype bf16|f32]   (f32: a checkpoint stored as the test fixtures are, the CPU backend's own type)
 *   default: ../shared/bench-configs/qwen3-0.6b (1.2 GB in bf16), the CPU backend. Prints a table and appends it
 *   to bench/RESULTS.md. On CUDA the weights' own time (the start-up line's, kernels compiling beside it) is a row
 *   of its own. --keep leaves the checkpoint in --out for what runs next (bench/load-device.sh).
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CpuBackend } from '../src/backend/cpu/backend.ts';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { loadModelConfig } from '../src/loader/hf-config.ts';
import { loadModel } from '../src/models/load.ts';
import { pickArchitecture } from '../src/models/registry.ts';
import { ModelWeights } from '../src/models/weights.ts';
import type { HostTensor } from '../src/primitives/host-tensor.ts';
import { prepareModel } from '../src/runner/load.ts';
import { markdownTable } from '../src/util/markdown.ts';

const { values: args } = parseArgs({
  options: {
    config: { type: 'string', default: join(import.meta.dirname, '..', '..', 'shared', 'bench-configs', 'qwen3-0.6b') },
    device: { type: 'string', default: 'cpu' },
    out: { type: 'string' },
    runs: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
    tokenizer: { type: 'string' },
    dtype: { type: 'string', default: 'bf16' },
  },
});
const SHARD = 4 * 2 ** 30;
if (args.dtype !== 'bf16' && args.dtype !== 'f32') throw new Error(`--dtype ${args.dtype}: expected bf16 or f32`);
/** Bytes a stored value takes. */
const WIDTH = args.dtype === 'f32' ? 4 : 2;
const dir = args.out ?? join(tmpdir(), 'pagoda-load-bench');

/** The tensors the architecture reads for this shape (names and shapes from config.json alone, nothing allocated). */
function tensorsOf(configDir: string): { name: string; shape: readonly number[] }[] {
  const seen: { name: string; shape: readonly number[] }[] = [];
  const fake = (shape: readonly number[]) => ({ shape, dtype: 'f32' as const });
  const backend = new (class extends CpuBackend {
    override loadWeight(w: HostTensor) {
      return fake(w.shape);
    }
    override loadStacked(parts: readonly HostTensor[]) {
      return fake(parts[0]!.shape);
    }
  })({ threads: 1 });
  const recorder = new (class extends ModelWeights {
    override has(): boolean {
      return false;
    }
    override host(name: string, shape: readonly number[]): HostTensor {
      seen.push({ name, shape });
      return { name, shape: [...shape], dtype: 'bf16', bytes: new Uint8Array(0) };
    }
  })({ names: () => [], has: () => false, get: () => ({}) as HostTensor, close: () => {} }, backend, configDir);
  const config = loadModelConfig(configDir);
  pickArchitecture(config, configDir).build(config, recorder, backend, {});
  return seen;
}

/**
 * Random values of magnitude 2^-7..2^-6 (sign, exponent 120, random bf16 mantissa; f32: the same values widened):
 * finite, like trained weights.
 */
function randomValues(count: number): Uint8Array {
  const bits = new Uint16Array(count);
  randomFillSync(bits);
  for (let i = 0; i < count; i++) bits[i] = (bits[i]! & 0x807f) | (120 << 7);
  if (WIDTH === 2) return new Uint8Array(bits.buffer);
  const wide = new Uint32Array(count);
  for (let i = 0; i < count; i++) wide[i] = bits[i]! << 16;
  return new Uint8Array(wide.buffer);
}

/** Writes the checkpoint (shards of at most 4 GiB and their index); returns its bytes. */
function writeCheckpoint(configDir: string): number {
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(configDir, 'config.json'), join(dir, 'config.json'));
  if (args.tokenizer) copyFileSync(args.tokenizer, join(dir, 'tokenizer.json'));
  const shards: { name: string; shape: readonly number[] }[][] = [[]];
  let size = 0;
  for (const t of tensorsOf(configDir)) {
    const bytes = t.shape.reduce((a, d) => a * d, 1) * WIDTH;
    if (size + bytes > SHARD && shards.at(-1)!.length) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(t);
    size += bytes;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((tensors, s) => {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const t of tensors) {
      const n = t.shape.reduce((a, d) => a * d, 1) * WIDTH;
      header[t.name] = { dtype: WIDTH === 4 ? 'F32' : 'BF16', shape: t.shape, data_offsets: [offset, offset + n] };
      offset += n;
      weightMap[t.name] = file;
    }
    const json = Buffer.from(JSON.stringify(header));
    const fd = openSync(join(dir, file), 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    for (const t of tensors) writeSync(fd, randomValues(t.shape.reduce((a, d) => a * d, 1)));
    closeSync(fd);
    total += statSync(join(dir, file)).size;
  });
  const index = JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap });
  const fd = openSync(join(dir, 'model.safetensors.index.json'), 'w');
  writeSync(fd, index);
  closeSync(fd);
  return total;
}

/** Reads every shard once into one reused buffer: what the page cache gives a plain reader. */
function readAll(): number {
  const t0 = performance.now();
  const buf = Buffer.allocUnsafe(64 * 2 ** 20);
  for (const f of Object.values(
    JSON.parse(spawnSync('cat', [join(dir, 'model.safetensors.index.json')]).stdout.toString()).weight_map,
  ).filter((v, i, a) => a.indexOf(v) === i) as string[]) {
    const fd = openSync(join(dir, f), 'r');
    while (readSync(fd, buf) > 0);
    closeSync(fd);
  }
  return (performance.now() - t0) / 1000;
}

/** Seconds to a loaded model, and on CUDA the weights' part as the start-up line gives it. */
function loadSeconds(): { total: number; weights: number | null } {
  const t0 = performance.now();
  const lines: string[] = [];
  const cpu = args.device === 'cpu' ? new CpuBackend() : null;
  if (cpu) loadModel(dir, cpu);
  else prepareModel(dir, { device: 'cuda', log: (l) => lines.push(l), maxModelLen: 256 });
  const total = (performance.now() - t0) / 1000;
  // Unloaded as a server unloads a model: the worker threads forget its weights, so its memory can be freed.
  cpu?.release();
  for (const l of lines) console.log(l);
  const weights = lines.join('\n').match(/weights [\d.]+ GB in ([\d.]+) s/);
  return { total, weights: weights ? Number(weights[1]) : null };
}

/** transformers' from_pretrained of the same folder, in seconds; null where Python has no transformers. */
function transformersSeconds(): number | null {
  const code = [
    'import sys, time, torch',
    'from transformers import AutoModelForCausalLM',
    't0 = time.perf_counter()',
    `m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16, device_map=${args.device === 'cuda' ? '"cuda"' : '"cpu"'})`,
    args.device === 'cuda' ? 'torch.cuda.synchronize()' : 'pass',
    'print(time.perf_counter() - t0)',
  ].join('\n');
  const r = spawnSync('python3', ['-c', code, dir], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim().split('\n').at(-1)) : null;
}

const cfg = loadModelConfig(args.config);
const bytes = writeCheckpoint(args.config);
const gb = bytes / 1e9;
const rows: string[][] = [];
const row = (what: string, s: number | null) =>
  rows.push([what, s === null ? 'n/a' : s.toFixed(2), s === null ? 'n/a' : (gb / s).toFixed(2)]);
for (let r = 0; r < Number(args.runs); r++) {
  row(`read every shard (baseline), run ${r + 1}`, readAll());
  const load = loadSeconds();
  const what = args.device === 'cpu' ? '' : ' (weights, kernels, KV sizing, tokenizer)';
  row(`pagoda load on ${args.device}${what}, run ${r + 1}`, load.total);
  if (load.weights !== null) row(`pagoda weights on the GPU, run ${r + 1}`, load.weights);
}
row('transformers from_pretrained', transformersSeconds());
const header = ['what', 's', 'GB/s'];
console.log(markdownTable(header, rows));
appendBenchResult(
  join(import.meta.dirname, 'RESULTS.md'),
  {
    name: 'Weight loading',
    deviceName: args.device === 'cpu' ? 'CPU' : 'CUDA',
    command: `npx tsx bench/load.ts ${process.argv.slice(2).join(' ')}`.trim(),
    about: `${cfg.architecture} shape from ${args.config.split('/').slice(-1)[0]}, ${gb.toFixed(2)} GB of ${args.dtype} safetensors, warm page cache`,
  },
  header,
  rows,
);
if (!args.keep) rmSync(dir, { recursive: true, force: true });
