import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { type LoadedEngine, loadEngine } from '../../engine/load.ts';
import { DEMO_MODEL_WARNING } from '../../loader/demo-model.ts';
import { isModelReference } from '../../runner/load.ts';
import { looksLikePath, nameProblem } from '../../store/names.ts';
import { AnswerPrinter } from '../chat/answer-printer.ts';
import { formatStats } from '../chat/answer-stats.ts';
import { localChat } from '../chat/backends.ts';
import type { ChatSettings } from '../chat/set-command.ts';
import { addEngineOptions, engineOptionsFrom } from '../engine-options.ts';
import { pullMissingHubModel } from '../hub-pull.ts';
import { runInteractive, runInteractiveRemote } from '../interactive.ts';
import { addRunOptions, runSettingsFrom, thinkingFor } from '../run-options.ts';
import { addSamplingOptions } from '../sampling-options.ts';
import { serverServes, serverUrl } from '../server-url.ts';
import type { RegisterCommand } from './index.ts';

const DEFAULT_MAX_TOKENS = 256;

/**
 * `pagoda run [model] [prompt...]`: answers the prompt through the model's chat template (its continuation when the
 * model has none, or with --raw) and streams the answer to stdout.
 */
export const registerRun: RegisterCommand = (program) => {
  const cmd = new Command('run')
    .description('answer a prompt with a model (the built-in demo model when no model is given)')
    .argument(
      '[model]',
      'a name in the store or Ollama\'s store, a Hub repo id (pulled when missing), a model folder or GGUF file, or "demo"',
    )
    .argument(
      '[prompt...]',
      'the prompt, its words joined by spaces, after any text piped to stdin (interactive chat when there is neither)',
    );
  addRunOptions(cmd);
  addSamplingOptions(cmd);
  addEngineOptions(cmd);
  cmd.action(async (first: string | undefined, words: string[], opts: Record<string, unknown>) => {
    // Unquoted words are one prompt, as `ollama run` joins them.
    const second = words.length > 0 ? words.join(' ') : undefined;
    const settings = runSettingsFrom(opts);
    const engineOptions = engineOptionsFrom(opts);
    // The interactive chat goes through a running server when it serves the model (Ollama's behaviour), unless a flag
    // changes what the server has (an adapter, a quantization, the chat template).
    const interactive = second === undefined && first !== undefined && process.stdin.isTTY;
    const ownModel = [engineOptions.lora, engineOptions.quantization, engineOptions.chatTemplate].some(
      (v) => v !== undefined,
    );
    if (interactive && !existsSync(first) && !ownModel) {
      const base = serverUrl();
      if (await serverServes(base, first)) return runInteractiveRemote(base, first, settings);
    }
    const pulled = first !== undefined && (await pullMissingHubModel(first));
    // One argument: a model if it is shaped like one (found or not: a missing model is an error naming where
    // pagoda looked, never a prompt for the demo model); otherwise the prompt for the demo model.
    const [model, promptArg] =
      second !== undefined || pulled || (first !== undefined && isModelShaped(first))
        ? [first, second]
        : [undefined, first];
    const loaded = loadEngine(model, engineOptions);
    if (loaded.isDemo) process.stderr.write(`note: using the built-in demo model. ${DEMO_MODEL_WARNING}\n`);
    try {
      // As `ollama run`: text piped in comes before the prompt's words, and the run is never interactive. It is read
      // once the model is found, so that a wrong model name never waits on stdin.
      const piped = process.stdin.isTTY ? undefined : await readStdin();
      const prompt = piped === undefined ? promptArg : [piped, promptArg].filter((p) => p).join(' ');
      if (prompt === undefined) await runInteractive(loaded, model ?? loaded.modelDir, settings);
      else await answerOnce(loaded, prompt, settings);
    } finally {
      await loaded.engine.shutdown(true);
    }
  });
  program.addCommand(cmd);
};

/**
 * Streams the answer to one prompt (the chat's in-process path, one turn). Unless a flag says otherwise: the model's
 * sampling defaults (Modelfile PARAMETERs, then generation_config.json), then pagoda's own (greedy, at most 256
 * tokens); at most what the context has room for. `--verbose` stats go to stderr, so a pipe gets only the answer.
 */
async function answerOnce(loaded: LoadedEngine, prompt: string, settings: ChatSettings): Promise<void> {
  const backend = localChat(loaded, loaded.modelName, { defaultMaxTokens: DEFAULT_MAX_TOKENS });
  const think = thinkingFor(settings, { thinks: backend.thinks, name: loaded.modelName });
  const printer = new AnswerPrinter(process.stdout, settings.hideThinking);
  const turn = [{ role: 'user', content: prompt }];
  for await (const delta of backend.stream(turn, { ...settings, think }, new AbortController().signal)) {
    printer.push(delta);
  }
  if (!printer.answer.endsWith('\n')) process.stdout.write('\n');
  if (settings.verbose && printer.stats) process.stderr.write(`${formatStats(printer.stats)}\n`);
}

/**
 * A single argument that can only mean a model: no white space, and a valid `name[:tag]` / `ns/name[:tag]`, a path,
 * or anything that resolves. "Once upon a time" or "Why?" are prompts.
 */
function isModelShaped(arg: string): boolean {
  if (/\s/.test(arg)) return false;
  return nameProblem(arg) === null || looksLikePath(arg) || arg.includes('/') || isModelReference(arg);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\n$/, '');
}
