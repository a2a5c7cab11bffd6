import { Command } from 'commander';
import { THINK_REASONING_PARSERS } from '../../server/chat-output.ts';
import { resolveServeConfig } from '../../server/config.ts';
import { startServer } from '../../server/serve.ts';
import { TOOL_CALL_PARSERS } from '../../tools/tool-parser.ts';
import { UserError } from '../../util/errors.ts';
import { addEngineOptions, engineOptionsFrom, parseSeed } from '../engine-options.ts';
import { pullMissingHubModel } from '../hub-pull.ts';
import type { RegisterCommand } from './index.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `pagoda serve`: the OpenAI- and Ollama-compatible HTTP server. */
export const registerServe: RegisterCommand = (program) => {
  const cmd = new Command('serve')
    .description('serve models over OpenAI- and Ollama-compatible HTTP APIs (default 127.0.0.1:11434)')
    .argument('[model]', "the model to serve, as vLLM's `vllm serve MODEL` names it (the same as one --model)")
    .option(
      '-m, --model <path|name>',
      'a model folder, a store name, a Hub repo id (downloaded when missing) or "demo", kept loaded (repeatable; default: demo)',
      collect,
    )
    .option(
      '--served-model-name <names...>',
      "the first --model's name in the APIs (more names: aliases it also answers to) [PAGODA_SERVED_MODEL_NAME]",
    )
    .option(
      '--lora-modules <name=folder>',
      'serve the first --model with a PEFT LoRA adapter merged in, as its own model NAME (repeatable)',
      collect,
    )
    .option(
      '--allow-runtime-lora-updating',
      'answer /v1/load_lora_adapter and /v1/unload_lora_adapter [PAGODA_ALLOW_RUNTIME_LORA_UPDATING=1]',
    )
    .option('--host <host>', 'address to listen on, optionally host:port [PAGODA_HOST]')
    .option('--port <port>', 'port to listen on (default 11434)')
    .option('--num-parallel <n>', 'concurrent sequences per model [PAGODA_NUM_PARALLEL]')
    .option('--flash-attention <auto|1|0>', 'attention kernels on the GPU [PAGODA_FLASH_ATTENTION]')
    .option('--context-length <n>', 'tokens per sequence (default: the model maximum) [PAGODA_CONTEXT_LENGTH]')
    .option('--keep-alive <duration>', 'how long an idle model stays loaded, e.g. 5m, -1 [PAGODA_KEEP_ALIVE]')
    .option('--max-loaded-models <n>', 'models loaded on demand resident at once [PAGODA_MAX_LOADED_MODELS]')
    .option('--max-queue <n>', 'requests waiting beyond the running ones before 503 [PAGODA_MAX_QUEUE]')
    .option('--models <dir>', 'the model store folder [PAGODA_MODELS]')
    .option('--download-dir <dir>', 'the Hugging Face cache Hub models are found in [HF_HUB_CACHE]')
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" on every route but /health [PAGODA_API_KEY]')
    .option('--origins <list>', 'comma-separated browser origins allowed (CORS), * globs [PAGODA_ORIGINS]')
    .option('--body-limit <size>', 'largest request body, e.g. 4mb [PAGODA_BODY_LIMIT]')
    .option('--headers-timeout <duration>', 'time a client has to send its headers, 0 = none [PAGODA_HEADERS_TIMEOUT]')
    .option(
      '--request-timeout <duration>',
      'time a client has to send its whole request (not the answer), 0 = none [PAGODA_REQUEST_TIMEOUT]',
    )
    .option('--shutdown-grace <duration>', 'how long SIGTERM waits for in-flight requests [PAGODA_SHUTDOWN_GRACE]')
    .option(
      '--load-timeout <duration>',
      'how long a request waits for its model to load, 0 = no limit (default 5m) [PAGODA_LOAD_TIMEOUT]',
    )
    .option('--no-ui', 'do not serve the web page at /ui [PAGODA_NO_UI=1]')
    .option('--seed <n>', 'seeds the seed of each request that gives none, so sampling repeats from start to start')
    .option(
      '--tool-call-parser <name>',
      `read every model's tool calls in this format instead of the one its template suggests: ${Object.keys(TOOL_CALL_PARSERS).join(', ')}`,
    )
    .option(
      '--response-role <role>',
      'the role chat answers name where the prompt opens a new turn (default: assistant)',
    )
    .option('--enable-auto-tool-choice', 'accepted: tool_choice "auto" is always allowed')
    .option(
      '--reasoning-parser <name>',
      `accepted for ${THINK_REASONING_PARSERS.join(', ')}: <think> reasoning is always separated where the template thinks`,
    )
    .option('--disable-log-requests', 'no log line per request')
    .option('--enable-log-requests', 'a log line per request (the default)')
    .option(
      '--uvicorn-log-level <level>',
      'the server log level: critical, error, warning, info, debug or trace [PAGODA_LOG_LEVEL]',
    );
  addEngineOptions(cmd);
  cmd.action(async (positional: string | undefined, opts: Record<string, unknown>) => {
    if (positional !== undefined) {
      if (opts.model !== undefined) {
        throw new UserError(`serve ${positional}: name the model once, as the argument or with --model, not both`);
      }
      opts.model = [positional];
    }
    // The store reads its folder from the environment; a --models flag is the same setting.
    if (typeof opts.models === 'string') process.env.PAGODA_MODELS = opts.models;
    // Likewise the Hugging Face cache, which --download-dir names as vLLM's does.
    if (typeof opts.downloadDir === 'string') process.env.HF_HUB_CACHE = opts.downloadDir;
    const config = resolveServeConfig(opts);
    // A Hub model that is not here yet is downloaded first, as `vllm serve` does.
    for (const spec of config.models) await pullMissingHubModel(spec);
    const engineOptions = engineOptionsFrom(opts);
    if (opts.seed !== undefined) engineOptions.seed = parseSeed(String(opts.seed));
    if (engineOptions.lora) {
      throw new UserError(
        `--lora ${engineOptions.lora}: serve takes --lora-modules NAME=FOLDER (the first model with the adapter, served as NAME)`,
      );
    }
    const say = (line: string) => process.stdout.write(`${line}\n`);
    const server = await startServer(config, engineOptions, say);
    let signals = 0;
    const stop = (signal: string) => {
      if (++signals > 1) process.exit(1);
      say(`${signal} received`);
      server.shutdown().then(
        () => process.exit(0),
        (err) => {
          process.stderr.write(`error during shutdown: ${(err as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // A --model that cannot load ends the server, as it did when loading came before listening.
    await server.ready.catch(async (err: unknown) => {
      await server.shutdown();
      throw err;
    });
  });
  program.addCommand(cmd);
};
