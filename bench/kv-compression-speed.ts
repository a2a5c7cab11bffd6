/**
 * KV compression at long context: decode ms/token and how many such requests the KV cache holds at once, with and
 * without SnapKV, one mode per run (the GPU's memory holds one 8B model). Default: the Llama-3.1-8B-shaped dummy
 * with a 32k-token prompt and a 2,048-token budget, on the device (bench/kv-compression-device.sh runs both modes).
 *   node --import tsx bench/kv-compression-speed.ts [--model DIR] [--device cuda] [--prompt 32768] [--output 128]
 *        [--budget 2048 | 0 (uncompressed)] [--requests N (default: as many as fit)] [--dummy] [--save FILE]
 * Prints a table (and appends it to FILE).
 */
import { join } from 'node:path';
import { appendBenchResult } from '../src/cli/bench/results.ts';
import { settingsFromEnv } from '../src/cli/settings.ts';
import { loadEngine } from '../src/engine/load.ts';
import { Rng } from '../src/engine/sequence.ts';
import { markdownTable } from '../src/util/markdown.ts';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const root = join(import.meta.dirname, '..');
const model = opt('model', join(root, 'bench', 'configs', 'llama3.1-8b'));
const PROMPT = Number(opt('prompt', '32768'));
const OUTPUT = Number(opt('output', '128'));
const BUDGET = Number(opt('budget', '2048'));
const BLOCK = 16;
const env = settingsFromEnv();

const loaded = loadEngine(model, {
  device: opt('device', 'cuda'),
  cuda: env.cuda,
  cpuThreads: env.cpuThreads,
  loadFormat: args.includes('--dummy') ? 'dummy' : 'auto',
  maxModelLen: PROMPT + OUTPUT,
  blockSize: BLOCK,
  enablePrefixCaching: false,
  ...(BUDGET > 0 && { kvCompression: { method: 'snapkv' as const, budget: BUDGET } }),
});
const { engine } = loaded;
const blocksEach = Math.ceil(((BUDGET > 0 ? BUDGET : PROMPT) + OUTPUT) / BLOCK);
const fit = Math.floor(loaded.numBlocks / blocksEach);
const requests = Number(opt('requests', String(Math.max(1, Math.min(fit, loaded.maxNumSeqs)))));
const rng = new Rng(7, 0);
const maxId = Math.min(loaded.config.vocabSize, 10_000);

/** `n` requests at once; decode ms/token as a user sees it (first to last token), and the most running at once. */
async function run(n: number): Promise<{ msPerToken: number; maxRunning: number; seconds: number }> {
  let maxRunning = 0;
  const poll = setInterval(() => {
    maxRunning = Math.max(maxRunning, engine.stats().running);
  }, 1);
  const start = performance.now();
  const perToken = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const prompt = Array.from({ length: PROMPT }, () => Math.floor(rng.next() * maxId));
      let first = 0;
      let tokens = 0;
      for await (const out of engine.generate({
        prompt,
        params: { temperature: 0, maxTokens: OUTPUT, ignoreEos: true, seed: i },
      })) {
        tokens += out.outputs[0]!.tokenIds.length;
        if (tokens > 0 && first === 0) first = performance.now();
      }
      return (performance.now() - first) / Math.max(1, tokens - 1);
    }),
  );
  clearInterval(poll);
  const msPerToken = perToken.reduce((a, x) => a + x, 0) / n;
  return { msPerToken, maxRunning, seconds: (performance.now() - start) / 1000 };
}

await run(1); // warm-up: kernels compiled, graphs captured
const one = await run(1);
const many = await run(requests);
const saved = engine.stats().kvBlocksSaved;
await engine.shutdown();
const mode = BUDGET > 0 ? `SnapKV, budget ${BUDGET}` : 'full KV';
const header = [
  'mode',
  'KV blocks',
  'blocks/request after prefill',
  'requests that fit',
  'requests run',
  'most running at once',
  'decode ms/token (1)',
  `decode ms/token (${requests})`,
  'seconds',
  'KV blocks saved',
];
const row = [
  mode,
  String(loaded.numBlocks),
  String(blocksEach),
  String(fit),
  String(requests),
  String(many.maxRunning),
  one.msPerToken.toFixed(2),
  many.msPerToken.toFixed(2),
  many.seconds.toFixed(1),
  String(saved),
];
console.log(markdownTable(header, [row]));
const save = opt('save', '');
if (save) {
  appendBenchResult(
    save,
    {
      name: 'KV compression at long context',
      deviceName: loaded.deviceName,
      command: `node --import tsx bench/kv-compression-speed.ts ${args.join(' ')}`,
      about: `${loaded.modelName}, prompt ${PROMPT}, output ${OUTPUT}, temperature 0`,
    },
    header,
    [row],
  );
}
