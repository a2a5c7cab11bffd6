import { type Command, Option } from 'commander';
import type { EngineOptions } from '../runner/load.ts';
import { UserError } from '../util/errors.ts';
import { settingsFromEnv } from './settings.ts';

/** The engine flags every command that runs a model shares (run, serve, bench). */
export function addEngineOptions(cmd: Command): Command {
  return cmd
    .option('--kv-cache-memory <bytes>', 'memory for the KV cache, e.g. 512MiB or 2GiB (default 256MiB on the CPU)')
    .option('--block-size <n>', 'tokens per KV cache block', '16')
    .option('--max-num-batched-tokens <n>', 'token budget of one engine step (default 256 on the CPU)')
    .option('--max-num-seqs <n>', 'sequences per engine step (default 64 on the CPU)')
    .option('--max-model-len <n>', 'longest prompt + output (default: the model maximum)')
    .option('--no-prefix-caching', 'turn automatic prefix caching off')
    .addOption(
      new Option('--scheduling-policy <policy>', 'request order').choices(['fcfs', 'priority']).default('fcfs'),
    )
    .option('--device <device>', 'auto (CUDA when usable, else CPU), cuda or cpu (default: $PAGODA_DEVICE or auto)')
    .addOption(
      new Option('--dtype <dtype>', 'GPU weights and activations: auto keeps bf16/fp16 as stored, fp32 becomes bf16')
        .choices(['auto', 'bfloat16', 'float16', 'float32'])
        .default('auto'),
    )
    .option('--gpu-memory-utilization <fraction>', 'share of GPU memory to use; the KV cache gets the rest', '0.9')
    .addOption(
      new Option('--load-format <format>', 'dummy: random weights made on the GPU from config.json (benchmarks)')
        .choices(['auto', 'dummy'])
        .default('auto'),
    );
}

/** Reads the flags added by `addEngineOptions`, over the environment's settings, into the loader's plain options. */
export function engineOptionsFrom(opts: Record<string, unknown>): EngineOptions {
  const env = settingsFromEnv();
  const int = (key: string, flag: string) =>
    opts[key] === undefined ? undefined : parseIntFlag(String(opts[key]), flag);
  return {
    kvCacheMemory: opts.kvCacheMemory === undefined ? undefined : parseBytes(String(opts.kvCacheMemory)),
    blockSize: int('blockSize', '--block-size'),
    maxNumBatchedTokens: int('maxNumBatchedTokens', '--max-num-batched-tokens'),
    maxNumSeqs: int('maxNumSeqs', '--max-num-seqs'),
    maxModelLen: int('maxModelLen', '--max-model-len'),
    enablePrefixCaching: opts.prefixCaching !== false,
    schedulingPolicy: opts.schedulingPolicy as 'fcfs' | 'priority',
    device: opts.device === undefined ? env.device : String(opts.device),
    cuda: env.cuda,
    cpuThreads: env.cpuThreads,
    dtype: opts.dtype === undefined ? undefined : String(opts.dtype),
    gpuMemoryUtilization:
      opts.gpuMemoryUtilization === undefined
        ? undefined
        : parseNumberFlag(String(opts.gpuMemoryUtilization), '--gpu-memory-utilization'),
    loadFormat: opts.loadFormat === 'dummy' ? 'dummy' : 'auto',
  };
}

export function parseIntFlag(v: string, flag: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw new UserError(`${flag} ${v}: expected an integer`);
  return Number(v);
}

export function parseNumberFlag(v: string, flag: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UserError(`${flag} ${v}: expected a number`);
  return n;
}

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

/** "512MiB", "2G", "1000000" -> bytes. */
export function parseBytes(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new UserError(`--kv-cache-memory ${v}: expected bytes like 536870912, 512MiB or 2GiB`);
  return Math.floor(Number(m[1]) * unit);
}
