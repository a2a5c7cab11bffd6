/**
 * CPU decode of one GGUF file by pagoda and by llama.cpp (node-llama-cpp's prebuilt CPU build), each in its own
 * process so that resident memory is its own: tokens/s at batch 1 and peak resident memory, rounds interleaved.
 * Without --file, writes a Llama-3-8B-shaped random Q4_K_M file first (`pagoda quantize --load-format dummy`, the
 * llama2 fixture vocabulary padded to 128,256) into the system's temp folder, and reuses it on later runs.
 * Usage: npx tsx bench/gguf-vs-llama-cpp.ts [--file F.gguf] [--threads 2] [--tokens 16] [--rounds 2]
 * Prints a table and appends it to bench/RESULTS.md.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.PAGODA_FIXTURES ?? join(root, '..', 'shared', 'fixtures');
const PROMPT_TOKENS = 16;

interface Measured {
  engine: string;
  loadS: number;
  /** Prompt tokens a second: the prompt's one evaluation, up to its first token. */
  promptTokS: number;
  decodeTokS: number;
  maxRssGiB: number;
}

const { values: opts } = parseArgs({
  options: {
    file: { type: 'string' },
    threads: { type: 'string', default: '2' },
    tokens: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
    child: { type: 'string' },
  },
});
const threads = Number(opts.threads);
const tokens = Number(opts.tokens);
const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => 100 + i * 37);

/** pagoda: load the file on the CPU backend, then greedy decode one token per step through the paged cache. */
async function pagoda(file: string): Promise<Measured> {
  const { CpuBackend } = await import('../src/backend/cpu/backend.ts');
  const { loadModel } = await import('../src/models/load.ts');
  const { buildStepBatch } = await import('../src/runner/step-batch.ts');
  let t0 = performance.now();
  const model = loadModel(file, new CpuBackend({ threads }));
  const loadS = (performance.now() - t0) / 1000;
  const blockSize = 16;
  const table = Array.from({ length: Math.ceil((PROMPT_TOKENS + tokens + 1) / blockSize) }, (_, i) => i);
  const kv = model.backend.allocKvCache({ ...model.kvShape, numBlocks: table.length, blockSize });
  const vocab = model.config.vocabSize;
  const step = (ids: number[], start: number): number => {
    const batch = buildStepBatch([{ tokenIds: ids, startPos: start, blockTable: table, logits: 'last' }], blockSize);
    const logits = model.backend.toHost(model.forward(model.backend.beginStep(batch), kv));
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  };
  t0 = performance.now();
  let next = step(prompt, 0);
  const promptTokS = PROMPT_TOKENS / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < tokens; i++) next = step([next], PROMPT_TOKENS + i);
  const decodeTokS = tokens / ((performance.now() - t0) / 1000);
  return { engine: 'pagoda', loadS, promptTokS, decodeTokS, maxRssGiB: process.resourceUsage().maxRSS / 2 ** 20 };
}

/** llama.cpp: the same prompt ids, then greedy tokens one evaluation at a time. */
async function llamaCpp(file: string): Promise<Measured> {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  let t0 = performance.now();
  const model = await llama.loadModel({ modelPath: file });
  const loadS = (performance.now() - t0) / 1000;
  const ctx = await model.createContext({ contextSize: 256, batchSize: 64, threads, flashAttention: false });
  let n = 0;
  let promptTokS = 0;
  t0 = performance.now();
  for await (const _ of ctx.getSequence().evaluate(prompt as never, { temperature: 0 })) {
    // The first token ends the prompt's evaluation; time the ones after it.
    if (n === 0) {
      promptTokS = PROMPT_TOKENS / ((performance.now() - t0) / 1000);
      t0 = performance.now();
    }
    if (++n > tokens) break;
  }
  const decodeTokS = tokens / ((performance.now() - t0) / 1000);
  const maxRssGiB = process.resourceUsage().maxRSS / 2 ** 20;
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return { engine: 'llama.cpp', loadS, promptTokS, decodeTokS, maxRssGiB };
}

function defaultFile(): string {
  const dir = join(tmpdir(), 'pagoda-bench');
  const file = join(dir, 'llama3-8b-q4_k_m.gguf');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const config = join(shared, '..', 'bench-configs', 'llama3-8b');
    const vocab = join(shared, 'tokenizers', 'llama2');
    execFileSync(
      process.execPath,
      [
        join(root, 'bin', 'pagoda.mjs'),
        'quantize',
        '--load-format',
        'dummy',
        '--vocab',
        vocab,
        config,
        file,
        '--type',
        'q4_k_m',
      ],
      { stdio: 'inherit' },
    );
  }
  return file;
}

if (opts.child) {
  const file = opts.file!;
  const m = opts.child === 'pagoda' ? await pagoda(file) : await llamaCpp(file);
  process.stdout.write(`${JSON.stringify(m)}\n`);
} else {
  const file = opts.file ?? defaultFile();
  const runs: Measured[] = [];
  for (let r = 0; r < Number(opts.rounds); r++) {
    for (const engine of ['llama.cpp', 'pagoda']) {
      const out = execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(import.meta.url),
          '--child',
          engine,
          '--file',
          file,
          '--threads',
          String(threads),
          '--tokens',
          String(tokens),
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
      );
      runs.push(JSON.parse(out.trim().split('\n').at(-1)!));
      console.log(JSON.stringify(runs.at(-1)));
    }
  }
  const best = (engine: string) => {
    const mine = runs.filter((m) => m.engine === engine);
    return {
      engine,
      loadS: Math.min(...mine.map((m) => m.loadS)),
      promptTokS: Math.max(...mine.map((m) => m.promptTokS)),
      decodeTokS: Math.max(...mine.map((m) => m.decodeTokS)),
      maxRssGiB: Math.max(...mine.map((m) => m.maxRssGiB)),
    };
  };
  const [theirs, ours] = [best('llama.cpp'), best('pagoda')];
  const roundRatios = () =>
    runs.flatMap((m, i) => (m.engine === 'pagoda' ? [(m.decodeTokS / runs[i - 1]!.decodeTokS).toFixed(2)] : []));
  const rows = [theirs, ours].map((m) => [
    m.engine,
    m.loadS.toFixed(1),
    m.promptTokS.toFixed(2),
    m.decodeTokS.toFixed(3),
    m.maxRssGiB.toFixed(2),
    (m.decodeTokS / theirs.decodeTokS).toFixed(2),
    (m.maxRssGiB / theirs.maxRssGiB).toFixed(2),
  ]);
  const head = [
    'engine',
    'load s',
    'prompt tok/s',
    'decode tok/s',
    'peak RSS GiB',
    'speed vs llama.cpp',
    'memory vs llama.cpp',
  ];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => `| ${cells.map((x, c) => x.padEnd(widths[c]!)).join(' | ')} |`;
  const lines = [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const gb = (statSync(file).size / 1e9).toFixed(2);
  const section = [
    `## GGUF on the CPU, pagoda and llama.cpp on the same file — ${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'CPU'} (${cpus().length} threads, load average ${loadavg()[0]!.toFixed(1)}), Node ${process.version}`,
    '',
    `Command: \`npx tsx bench/gguf-vs-llama-cpp.ts --threads ${threads} --tokens ${tokens} --rounds ${opts.rounds}\` on ${opts.file ? 'the given file' : 'the Llama-3-8B-shaped random Q4_K_M file'} (${gb} GB); ${PROMPT_TOKENS}-token prompt, then ${tokens} greedy tokens at batch 1; each engine in its own process, rounds interleaved, best round.`,
    '',
    ...lines,
    '',
    `Each round's decode ratio (pagoda / llama.cpp, interleaved): ${roundRatios().join(', ')}.`,
    '',
  ].join('\n');
  console.log(lines.join('\n'));
  appendFileSync(join(root, 'bench', 'RESULTS.md'), `\n${section}`);
}
