import { Command } from 'commander';
import pino from 'pino';
import { type LoadedPoolingEngine, loadPoolingEngine } from '../../engine/pooling-load.ts';
import { buildApp } from '../../server/app.ts';
import { resolveServeConfig } from '../../server/config.ts';
import { servedPoolingModel } from '../../server/engine-source.ts';
import { ModelRegistry } from '../../server/models.ts';
import { UserError } from '../../util/errors.ts';
import {
  CPU_EMBED_WORKLOAD,
  type EmbedResult,
  type EmbedWorkload,
  embedInputs,
  GPU_EMBED_WORKLOAD,
  runEmbedClients,
  runEmbedOffline,
} from '../bench/embed.ts';
import { atLeast, parseRange, printRows, saveFile } from '../bench/flags.ts';
import { appendBenchResult, benchCommand } from '../bench/results.ts';
import { addEngineOptions, engineOptionsFrom, parseIntFlag } from '../engine-options.ts';

/**
 * `pagoda bench embed`: embeddings/s of an embedding model on random token-id inputs, offline (every input queued at
 * once) and, with `--clients N`, through `/v1/embeddings` of an in-process server with N concurrent clients.
 */
export function embedBenchCommand(): Command {
  const cmd = new Command('embed')
    .description('embedding throughput: offline, then through /v1/embeddings with concurrent clients')
    .requiredOption(
      '--model <model>',
      'an embedding model folder (e.g. bench/configs/bert-base with --load-format dummy)',
    )
    .option(
      '--num-inputs <n>',
      `inputs (default ${GPU_EMBED_WORKLOAD.numInputs}; ${CPU_EMBED_WORKLOAD.numInputs} on the CPU)`,
    )
    .option('--input-len-range <a,b>', 'input lengths in tokens, uniform (default 16,512; 16,128 on the CPU)')
    .option(
      '--clients <n>',
      'also run the inputs through /v1/embeddings from this many concurrent clients (0: no)',
      '64',
    )
    .option('--seed <n>', 'seed of the workload', '0')
    .option('--save <file>', 'also append the result (date, machine, command, table) to this markdown file');
  addEngineOptions(cmd);
  cmd.action(async (opts: Record<string, unknown>) => {
    const save = saveFile(opts);
    const clients = atLeast(opts.clients, '--clients', 0);
    const loaded = await loadPoolingEngine(opts.model as string, engineOptionsFrom(opts));
    if (loaded.task !== 'embed') throw new UserError(`${opts.model}: a reranking model; bench embed needs an embedder`);
    const base = loaded.backend === 'cpu' ? CPU_EMBED_WORKLOAD : GPU_EMBED_WORKLOAD;
    const w: EmbedWorkload = {
      numInputs: opts.numInputs === undefined ? base.numInputs : atLeast(opts.numInputs, '--num-inputs', 1),
      inputLen:
        opts.inputLenRange === undefined ? base.inputLen : parseRange(String(opts.inputLenRange), '--input-len-range'),
      seed: parseIntFlag(String(opts.seed), '--seed'),
    };
    if (w.inputLen[1] > loaded.maxModelLen) {
      throw new UserError(
        `--input-len-range: inputs of ${w.inputLen[1]} tokens exceed the model's maximum of ${loaded.maxModelLen}`,
      );
    }
    const inputs = embedInputs(loaded.config.vocabSize, w);
    process.stderr.write(
      `${w.numInputs} inputs of ${w.inputLen.join('..')} tokens, model ${loaded.modelName} on ${loaded.deviceName}\n`,
    );
    // A short untimed run first: kernels compile and the activation arena grows to the step's size.
    await runEmbedOffline(loaded.engine, inputs.slice(0, Math.min(inputs.length, 256)));
    const runs: [string, EmbedResult][] = [['offline (engine)', await runEmbedOffline(loaded.engine, inputs)]];
    if (clients > 0) runs.push([`/v1/embeddings, ${clients} clients`, await throughServer(loaded, inputs, clients)]);
    await loaded.engine.shutdown();
    const offline = runs[0]![1].embeddingsPerSecond;
    const header = ['path', 'embeddings/s', 'tokens/s', 'seconds', 'vs offline', 'engine steps'];
    const rows = runs.map(([path, r]) => [
      path,
      r.embeddingsPerSecond.toFixed(1),
      r.tokensPerSecond.toFixed(0),
      r.seconds.toFixed(2),
      `${(r.embeddingsPerSecond / offline).toFixed(2)}x`,
      r.steps ? String(r.steps) : '',
    ]);
    for (const row of rows) printRows(header.slice(1).map((h, i) => [`${row[0]}: ${h}`, row[i + 1]!] as const));
    if (save === undefined) return;
    appendBenchResult(
      save,
      {
        name: 'embed',
        deviceName: loaded.deviceName,
        command: benchCommand('embed'),
        about: `model ${loaded.modelName}; ${w.numInputs} inputs of ${w.inputLen.join('..')} random tokens`,
      },
      header,
      rows,
    );
  });
  return cmd;
}

/**
 * The inputs through an in-process server's /v1/embeddings (the loaded engine behind it, served as "bench"), with the
 * engine steps they took.
 */
export async function throughServer(
  loaded: LoadedPoolingEngine,
  inputs: number[][],
  clients: number,
  threads?: number,
): Promise<EmbedResult> {
  const config = { ...resolveServeConfig({}, {}), port: 0, maxQueue: Math.max(512, clients) };
  const model = servedPoolingModel(loaded);
  const entry = { name: 'bench', path: loaded.modelDir, ref: loaded.modelDir };
  const c = loaded.config;
  const info = {
    architecture: c.architecture,
    family: c.modelType,
    format: 'safetensors',
    parameterCount: 0,
    quantization: c.dtype,
    sizeBytes: 0,
    modifiedAt: new Date(),
    maxContextLength: loaded.maxModelLen,
    config: c.raw,
    chatTemplate: null,
    task: loaded.task,
  };
  const source = { load: async () => model, inspect: async () => info };
  const registry = new ModelRegistry([entry], source, { maxLoaded: 1, keepAliveMs: -1 });
  const { app } = buildApp(config, registry, pino({ level: 'silent' }), 'bench');
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const address = app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const before = loaded.engine.stats().steps;
    const result = await runEmbedClients(url, 'bench', inputs, clients, threads);
    return { ...result, steps: loaded.engine.stats().steps - before };
  } finally {
    await app.close();
  }
}
