import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { loadEngine } from '../../engine/load.ts';
import { DEMO_MODEL_WARNING } from '../../loader/demo-model.ts';
import { isModelReference } from '../../runner/load.ts';
import { pullFromHub } from '../../store/hub.ts';
import { isHubRepoId, parseModelName } from '../../store/names.ts';
import { addEngineOptions, engineOptionsFrom } from '../engine-options.ts';
import { runInteractive, runInteractiveRemote } from '../interactive.ts';
import { pullProgressRenderer } from '../progress.ts';
import { addSamplingOptions, samplingParamsFrom } from '../sampling-options.ts';
import { serverServes, serverUrl } from '../server-url.ts';
import type { RegisterCommand } from './index.ts';

const DEFAULT_MAX_TOKENS = 256;

/** `pagoda run [model] [prompt]`: streams a continuation of the prompt to stdout. */
export const registerRun: RegisterCommand = (program) => {
  const cmd = new Command('run')
    .description('generate a continuation of a prompt (the built-in demo model when no model is given)')
    .argument('[model]', 'a stored name, a Hub repo id (pulled when missing), a model folder, or "demo"')
    .argument('[prompt]', 'text to continue (read from stdin when piped; interactive chat otherwise)');
  addSamplingOptions(cmd);
  addEngineOptions(cmd);
  cmd.action(async (first: string | undefined, second: string | undefined, opts: Record<string, unknown>) => {
    const params = samplingParamsFrom(opts);
    // The interactive chat goes through a running server when it serves the model (Ollama's behaviour).
    const interactive = second === undefined && first !== undefined && process.stdin.isTTY;
    if (interactive && !existsSync(first)) {
      const base = serverUrl();
      if (await serverServes(base, first)) return runInteractiveRemote(base, first, params);
    }
    // A Hub repo id that is not here yet is pulled first, as `ollama run` does.
    const pulled = first !== undefined && !isModelReference(first) && isHubReference(first) && (await pull(first));
    // One argument: a model if it names one, otherwise the prompt for the demo model.
    const [model, promptArg] =
      second !== undefined || pulled || (first !== undefined && isModelReference(first))
        ? [first, second]
        : [undefined, first];
    const prompt = promptArg ?? (process.stdin.isTTY ? undefined : await readStdin());
    const loaded = loadEngine(model, engineOptionsFrom(opts));
    if (loaded.isDemo) process.stderr.write(`note: using the built-in demo model. ${DEMO_MODEL_WARNING}\n`);
    try {
      if (prompt === undefined) {
        await runInteractive(loaded, params);
        return;
      }
      if (params.maxTokens === undefined) {
        const room = loaded.engine.config.maxModelLen - loaded.tokenizer.encode(prompt).length;
        params.maxTokens = Math.max(1, Math.min(DEFAULT_MAX_TOKENS, room));
      }
      let last = '';
      for await (const out of loaded.engine.generate({ prompt, params })) {
        for (const d of out.outputs) {
          process.stdout.write(d.text);
          if (d.text) last = d.text;
        }
      }
      if (!last.endsWith('\n')) process.stdout.write('\n');
    } finally {
      await loaded.engine.shutdown(true);
    }
  });
  program.addCommand(cmd);
};

/** `org/repo[:revision]`, a name only the Hub can resolve (a prompt with spaces never is one). */
function isHubReference(arg: string): boolean {
  try {
    return isHubRepoId(parseModelName(arg).repo);
  } catch {
    return false;
  }
}

/** Pulls a missing Hub model with `pagoda pull`'s progress display; true once it is in the cache. */
async function pull(ref: string): Promise<true> {
  process.stderr.write(`${ref} is not here yet: pulling it from the Hugging Face Hub\n`);
  const progress = pullProgressRenderer();
  try {
    await pullFromHub(ref, { onProgress: progress.onProgress });
  } finally {
    progress.stop();
  }
  return true;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\n$/, '');
}
