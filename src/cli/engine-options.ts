import { type Command, Option } from 'commander';
import { checkKvBudget } from '../engine/kv-budget.ts';
import { DEFAULT_MAX_LOGPROBS } from '../engine/params.ts';
import { KV_CACHE_TYPES, kvCacheTypeFlags, parseKvCacheType } from '../primitives/kv-cache-type.ts';
import {
  KV_COMPRESSION_METHODS,
  type KvCompressionConfig,
  type KvCompressionMethod,
} from '../primitives/kv-compression.ts';
import type { EngineOptions, SpeculativeOptions } from '../runner/load.ts';
import { UserError } from '../util/errors.ts';
import { statusLine } from './progress.ts';
import { type EnvSettings, type SpeculativeEnv, settingsFromEnv } from './settings.ts';

/** The engine flags every command that runs a model shares (run, serve, bench). */
export function addEngineOptions(cmd: Command): Command {
  return cmd
    .option('--kv-cache-memory <bytes>', 'memory for the KV cache, e.g. 512MiB or 2GiB (default 256MiB on the CPU)')
    .option('--block-size <n>', 'tokens per KV cache block', '16')
    .option('--max-num-batched-tokens <n>', 'token budget of one engine step (default 256 on the CPU)')
    .option('--max-num-seqs <n>', 'sequences per engine step (default 64 on the CPU)')
    .option('--max-model-len <n>', 'longest prompt + output (default: the model maximum)')
    .option('--no-prefix-caching', 'turn automatic prefix caching off')
    .option('--enable-prefix-caching', "vLLM's spelling of automatic prefix caching on (the default)")
    .option('--no-enable-prefix-caching', "vLLM's spelling of --no-prefix-caching")
    .option(
      '--no-async-scheduling',
      "plan each step only after the last one's tokens are back (default: the next decode step is launched while one runs, where the device samples)",
    )
    .option(
      '--kv-cache-type <type>',
      `KV cache storage: ${KV_CACHE_TYPES.join(', ')} (default: $PAGODA_KV_CACHE_TYPE; serve also reads $OLLAMA_KV_CACHE_TYPE)`,
    )
    .option(
      '--kv-cache-dtype <type>',
      "vLLM's name for --kv-cache-type: auto, fp8, fp8_e4m3, bfloat16, float16 or half, float32",
    )
    .option(
      '--kv-compression <method>',
      "compress long prompts' KV cache: snapkv or none (default: $PAGODA_KV_COMPRESSION or none)",
    )
    .option(
      '--kv-budget <n>',
      'KV entries a compressed prompt keeps: tokens, or a fraction 0 < f < 1 (default: $PAGODA_KV_BUDGET; per request kv_budget)',
    )
    .addOption(
      new Option('--scheduling-policy <policy>', 'request order').choices(['fcfs', 'priority']).default('fcfs'),
    )
    .option('--device <device>', 'auto (CUDA when usable, else CPU), cuda or cpu (default: $PAGODA_DEVICE or auto)')
    .option(
      '--grammar-workers <n>',
      "threads computing structured output's masks (default: $PAGODA_GRAMMAR_WORKERS, else the cores less two, 2..8)",
    )
    .option(
      '--tensor-parallel-size <n>',
      'ranks the weights are split over (default: $PAGODA_TENSOR_PARALLEL_SIZE or 1; on the CPU a simulation)',
    )
    .addOption(
      new Option('--dtype <dtype>', 'GPU weights and activations: auto keeps bf16/fp16 as stored, fp32 becomes bf16')
        .choices(['auto', 'bfloat16', 'float16', 'float32'])
        .default('auto'),
    )
    .option(
      '--runner-thread',
      "embedding and reranking models: weights and step launches in a thread apart from the server's (default: $PAGODA_RUNNER_THREAD, else on for CUDA)",
    )
    .option(
      '--no-runner-thread',
      'embedding and reranking models: steps launched on the main thread (default on the CPU)',
    )
    .option(
      '--max-logprobs <n>',
      `most logprobs, top_logprobs and prompt_logprobs a request may ask for; -1: the whole vocabulary (default: $PAGODA_MAX_LOGPROBS or ${DEFAULT_MAX_LOGPROBS})`,
    )
    .option('--enforce-eager', 'CUDA: run every decode step op by op, never captured as a CUDA graph')
    .option(
      '--generation-config <auto|vllm|folder>',
      "sampling defaults from the model's generation_config.json (auto), none (vllm), or a folder's generation_config.json",
    )
    .option(
      '--trust-remote-code',
      'accepted: pagoda runs no code from model repositories (each architecture is its own implementation)',
    )
    .option('--gpu-memory-utilization <fraction>', 'share of GPU memory to use; the KV cache gets the rest', '0.9')
    .addOption(
      new Option('--load-format <format>', 'dummy: random weights made from config.json (benchmarks)')
        .choices(['auto', 'dummy'])
        .default('auto'),
    )
    .option(
      '--quantization <type>',
      'quantize the weights at load: q8_0, q4_0, q4_k_m, q5_k_m, q6_k, … (CPU), fp8 (CUDA, compute capability 8.9+) (default: $PAGODA_QUANTIZATION)',
    )
    .option(
      '--lora <folder>',
      'a PEFT LoRA adapter folder, merged into the weights as they load (default: $PAGODA_LORA)',
    )
    .option(
      '--chat-template <file|template>',
      "a Jinja chat template (a file, or the text) used instead of the model's own (default: $PAGODA_CHAT_TEMPLATE)",
    )
    .option(
      '--speculative <ngram|model>',
      'speculative decoding: ngram (prompt lookup) or a draft model (folder or name)',
    )
    .option('--num-speculative-tokens <k>', `draft tokens per step (default ${DEFAULT_SPECULATIVE.numTokens})`)
    .option(
      '--speculative-ngram-min <n>',
      `shortest n-gram prompt lookup matches (default ${DEFAULT_SPECULATIVE.ngramMin})`,
    )
    .option(
      '--speculative-ngram-max <n>',
      `longest n-gram prompt lookup matches (default ${DEFAULT_SPECULATIVE.ngramMax})`,
    );
}

const DEFAULT_SPECULATIVE = { numTokens: 4, ngramMin: 1, ngramMax: 4 };

/** --speculative* over PAGODA_SPECULATIVE*; undefined when speculation is off. Errors name the flag or variable. */
export function speculativeOptionsFrom(
  opts: Record<string, unknown>,
  env: SpeculativeEnv = {},
): SpeculativeOptions | undefined {
  const pick = (key: string, flag: string, envKey: keyof SpeculativeEnv, variable: string) =>
    opts[key] !== undefined ? { value: String(opts[key]), name: flag } : { value: env[envKey], name: variable };
  const method = pick('speculative', '--speculative', 'method', 'PAGODA_SPECULATIVE');
  const numbers = {
    numTokens: pick('numSpeculativeTokens', '--num-speculative-tokens', 'numTokens', 'PAGODA_NUM_SPECULATIVE_TOKENS'),
    ngramMin: pick('speculativeNgramMin', '--speculative-ngram-min', 'ngramMin', 'PAGODA_SPECULATIVE_NGRAM_MIN'),
    ngramMax: pick('speculativeNgramMax', '--speculative-ngram-max', 'ngramMax', 'PAGODA_SPECULATIVE_NGRAM_MAX'),
  };
  if (method.value === undefined || method.value.trim() === '') {
    const orphan = Object.values(numbers).find((n) => n.value !== undefined);
    if (orphan) throw new UserError(`${orphan.name} ${orphan.value}: needs --speculative (or PAGODA_SPECULATIVE)`);
    return undefined;
  }
  const out: SpeculativeOptions = { proposer: method.value.trim(), ...DEFAULT_SPECULATIVE };
  for (const [key, { value, name }] of Object.entries(numbers) as [
    keyof typeof numbers,
    (typeof numbers)['numTokens'],
  ][]) {
    if (value === undefined) continue;
    const n = parseIntFlag(value, name);
    if (n < 1) throw new UserError(`${name} ${value}: expected a positive integer`);
    out[key] = n;
  }
  if (out.ngramMin > out.ngramMax) {
    throw new UserError(
      `--speculative-ngram-min ${out.ngramMin}: expected at most --speculative-ngram-max (${out.ngramMax})`,
    );
  }
  return out;
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
    enablePrefixCaching: prefixCachingFrom(opts),
    asyncScheduling: opts.asyncScheduling !== false && env.asyncScheduling !== false,
    schedulingPolicy: opts.schedulingPolicy as 'fcfs' | 'priority',
    kvCompression: kvCompressionFrom(opts, env),
    device: opts.device === undefined ? env.device : String(opts.device),
    cuda: opts.enforceEager === true ? { ...env.cuda, graphs: false } : env.cuda,
    maxLogprobs: maxLogprobsFrom(opts.maxLogprobs, env.maxLogprobs),
    generationConfig: opts.generationConfig === undefined ? undefined : String(opts.generationConfig),
    cpuThreads: env.cpuThreads,
    tensorParallelSize: positiveIntFrom(
      opts.tensorParallelSize,
      '--tensor-parallel-size',
      env.tensorParallelSize,
      'TENSOR_PARALLEL_SIZE',
    ),
    grammarWorkers: positiveIntFrom(opts.grammarWorkers, '--grammar-workers', env.grammarWorkers, 'GRAMMAR_WORKERS'),
    dtype: opts.dtype === undefined ? undefined : String(opts.dtype),
    runnerThread: opts.runnerThread === undefined ? env.runnerThread : opts.runnerThread === true,
    gpuMemoryUtilization:
      opts.gpuMemoryUtilization === undefined
        ? undefined
        : parseNumberFlag(String(opts.gpuMemoryUtilization), '--gpu-memory-utilization'),
    loadFormat: opts.loadFormat === 'dummy' ? 'dummy' : 'auto',
    progress: statusLine(),
    speculative: speculativeOptionsFrom(opts, env.speculative),
    quantization: opts.quantization === undefined ? env.quantization : String(opts.quantization),
    lora: opts.lora === undefined ? env.lora : String(opts.lora),
    chatTemplate: opts.chatTemplate === undefined ? env.chatTemplate : String(opts.chatTemplate),
    kvCacheType:
      kvCacheTypeFlags(stringOf(opts.kvCacheType), stringOf(opts.kvCacheDtype)) ??
      (env.kvCacheType === undefined ? undefined : parseKvCacheType(env.kvCacheType, 'PAGODA_KV_CACHE_TYPE')),
  };
}

const stringOf = (v: unknown) => (v === undefined ? undefined : String(v));

/** --no-prefix-caching and vLLM's --[no-]enable-prefix-caching: on unless turned off; both ways at once is refused. */
function prefixCachingFrom(opts: Record<string, unknown>): boolean {
  if (opts.prefixCaching === false && opts.enablePrefixCaching === true) {
    throw new UserError('--no-prefix-caching and --enable-prefix-caching disagree: give one of them');
  }
  return opts.prefixCaching !== false && opts.enablePrefixCaching !== false;
}

/** --max-logprobs over PAGODA_MAX_LOGPROBS: an integer >= -1 (-1: no cap short of the vocabulary). */
function maxLogprobsFrom(flag: unknown, env: string | undefined): number | undefined {
  const [value, name] = flag !== undefined ? [String(flag), '--max-logprobs'] : [env, 'PAGODA_MAX_LOGPROBS'];
  if (value === undefined) return undefined;
  const n = parseIntFlag(value, name);
  if (n < -1) throw new UserError(`${name} ${value}: expected an integer >= 0, or -1 for the whole vocabulary`);
  return n;
}

/** serve's --seed (vLLM's engine seed): an integer in 0..2^32-1. */
export function parseSeed(v: string): number {
  const n = parseIntFlag(v, '--seed');
  if (n < 0 || n >= 2 ** 32) throw new UserError(`--seed ${v}: expected an integer in 0..4294967295`);
  return n;
}

/** A flag over its PAGODA_<variable>: a positive integer; errors name the flag or variable. */
function positiveIntFrom(
  flag: unknown,
  flagName: string,
  env: string | undefined,
  variable: string,
): number | undefined {
  const [value, name] = flag !== undefined ? [String(flag), flagName] : [env, `PAGODA_${variable}`];
  if (value === undefined) return undefined;
  const n = parseIntFlag(value, name);
  if (n < 1) throw new UserError(`${name} ${value}: expected a positive integer`);
  return n;
}

/** --kv-compression and --kv-budget over PAGODA_KV_COMPRESSION and PAGODA_KV_BUDGET; undefined: none. */
function kvCompressionFrom(opts: Record<string, unknown>, env: EnvSettings): KvCompressionConfig | undefined {
  const given = (flag: string, key: string, name: string, fromEnv: string | undefined) =>
    opts[key] !== undefined
      ? { value: String(opts[key]), from: flag }
      : fromEnv
        ? { value: fromEnv, from: name }
        : null;
  const method = given('--kv-compression', 'kvCompression', 'PAGODA_KV_COMPRESSION', env.kvCompression);
  const budget = given('--kv-budget', 'kvBudget', 'PAGODA_KV_BUDGET', env.kvBudget);
  if (method?.value === 'none') return undefined;
  if (!method) {
    if (budget) throw new UserError(`${budget.from} ${budget.value}: needs --kv-compression snapkv`);
    return undefined;
  }
  if (!KV_COMPRESSION_METHODS.includes(method.value as KvCompressionMethod)) {
    throw new UserError(`${method.from} ${method.value}: expected ${KV_COMPRESSION_METHODS.join(', ')} or none`);
  }
  return {
    method: method.value as KvCompressionMethod,
    ...(budget && { budget: checkKvBudget(parseNumberFlag(budget.value, budget.from), budget.from) }),
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
