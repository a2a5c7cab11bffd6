import { once } from 'node:events';
import { closeSync, createReadStream, createWriteStream, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Command } from 'commander';
import { type BatchCounts, type BatchSend, runBatchFile } from '../../server/batch-file.ts';
import { resolveServeConfig } from '../../server/config.ts';
import { assembleServer } from '../../server/serve.ts';
import { UserError } from '../../util/errors.ts';
import { addEngineOptions, engineOptionsFrom } from '../engine-options.ts';
import { pullMissingHubModel } from '../hub-pull.ts';
import { statusLine } from '../progress.ts';
import type { RegisterCommand } from './index.ts';

const isUrl = (s: string) => /^https?:\/\//.test(s);

/**
 * Opens the input (a local file, or a URL read with GET), so that one that cannot be read fails in one line before the
 * model loads; the lines come from the returned function, streamed (a large batch is never held whole). Iterate them
 * at once: lines read before the iteration begins are not kept.
 */
async function openInput(source: string): Promise<() => AsyncIterable<string>> {
  const readLines = (input: Readable) => createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  if (!isUrl(source)) {
    try {
      closeSync(openSync(source, 'r'));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new UserError(`--input-file ${source}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    }
    return () => readLines(createReadStream(source, { encoding: 'utf8' }));
  }
  const res = await fetch(source).catch((err: Error) => {
    throw new UserError(`--input-file ${source}: ${err.message}`);
  });
  if (!res.ok || !res.body) throw new UserError(`--input-file ${source}: HTTP ${res.status}`);
  // A web stream is read only when asked: nothing is lost while the model loads.
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  return () => readLines(body);
}

/** `pagoda run-batch`: vLLM's offline batch runner over the OpenAI Batch API's file format. */
export const registerRunBatch: RegisterCommand = (program) => {
  const cmd = new Command('run-batch')
    .description(
      'run a file of OpenAI batch requests (JSON lines of custom_id, method, url, body) and write one answer line each',
    )
    .requiredOption('-i, --input-file <file|url>', 'the requests: a local file, or an http(s) URL read with GET')
    .requiredOption('-o, --output-file <file|url>', 'the answers: a local file, or an http(s) URL written with PUT')
    .option(
      '--model <path|name>',
      'a model folder, a store name, a Hub repo id (pulled when missing) or "demo" (default: demo)',
    )
    .option(
      '--served-model-name <name>',
      "the model's name in the requests' bodies (default: its folder or store name)",
    )
    .option(
      '--response-role <role>',
      'the role chat answers name where the prompt opens a new turn (default: assistant)',
    );
  addEngineOptions(cmd);
  cmd.action(async (opts: Record<string, unknown>) => {
    const input = String(opts.inputFile);
    const output = String(opts.outputFile);
    // Input and output are opened first: either failing is one line, before the model loads.
    const inputLines = await openInput(input);
    const staging = isUrl(output) ? await mkdtemp(join(tmpdir(), 'pagoda-batch-')) : null;
    const file = staging ? join(staging, 'output.jsonl') : output;
    const created = probeOutput(file, output);
    let opened = false;
    try {
      if (opts.model !== undefined) await pullMissingHubModel(String(opts.model));
      const t0 = performance.now();
      // Truncated only once the model is in: a load that fails leaves an existing file as it was.
      const openOutput = async () => {
        opened = true;
        return openOutputStream(file, output);
      };
      const counts = await runBatch(opts, inputLines, openOutput);
      if (staging) await upload(file, output);
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      process.stderr.write(
        `${counts.requests} request(s): ${counts.succeeded} succeeded, ${counts.failed} failed; wrote ${output} in ${seconds} s\n`,
      );
    } catch (err) {
      if (created && !opened) rmSync(file, { force: true });
      throw err;
    } finally {
      if (staging) rmSync(staging, { recursive: true, force: true });
    }
  });
  program.addCommand(cmd);
};

/**
 * Checks that the output file can be written without truncating it (opened for appending), and says whether this
 * created it: one that a failed run created empty is removed again.
 */
function probeOutput(file: string, output: string): boolean {
  const existed = existsSync(file);
  try {
    closeSync(openSync(file, 'a'));
  } catch (err) {
    throw new UserError(`--output-file ${output}: ${(err as Error).message}`);
  }
  return !existed;
}

/** The output file opened for writing; a write that fails (a full disk) rejects with a one-line error naming it. */
async function openOutputStream(file: string, output: string): Promise<BatchOutput> {
  const out = createWriteStream(file);
  const named = (err: Error) => new UserError(`--output-file ${output}: ${err.message}`);
  let failure: Error | null = null;
  out.on('error', (err) => {
    failure ??= named(err);
  });
  await once(out, 'open').catch((err: Error) => {
    throw named(err);
  });
  return {
    write: (line) => {
      if (failure) throw failure;
      return out.write(line)
        ? undefined
        : once(out, 'drain').then(
            () => {},
            (err: Error) => Promise.reject(named(err)),
          );
    },
    close: async () => {
      if (failure) throw failure;
      out.end();
      await once(out, 'finish').catch((err: Error) => {
        throw named(err);
      });
    },
  };
}

/** Where the answers go: one line at a time (a promise when the stream is full), then closed. */
interface BatchOutput {
  write: (line: string) => Promise<void> | void;
  close: () => Promise<void>;
}

/**
 * The server's app in this process, its requests handed to it directly: no port, no key, room in its queue for all
 * in flight, and no log line per request (the output file is the record). Two requests per sequence the engine runs
 * are in flight, so its batches stay full.
 */
async function runBatch(
  opts: Record<string, unknown>,
  lines: () => AsyncIterable<string>,
  openOutput: () => Promise<BatchOutput>,
): Promise<BatchCounts> {
  const config = resolveServeConfig({
    model: opts.model === undefined ? [] : [String(opts.model)],
    servedModelName: opts.servedModelName === undefined ? undefined : [String(opts.servedModelName)],
    responseRole: opts.responseRole === undefined ? undefined : String(opts.responseRole),
  });
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const batchConfig = { ...config, apiKey: null, maxQueue: 1 << 20, logRequests: false };
  const server = assembleServer(batchConfig, engineOptionsFrom(opts), say);
  const status = statusLine();
  try {
    await server.loadStartupModels();
    const output = await openOutput();
    const running = server.registry.resident()[0]?.model.maxRunning ?? 256;
    const send: BatchSend = async (url, body) => {
      const res = await server.app.inject({ method: 'POST', url, payload: body });
      let json: unknown = res.body;
      try {
        json = res.json();
      } catch {}
      return { status: res.statusCode, body: json };
    };
    const progress = (c: BatchCounts) =>
      status?.(`running batch: ${c.succeeded + c.failed} answered (${c.failed} failed)`);
    const counts = await runBatchFile(lines(), send, output.write, 2 * running, progress);
    await output.close();
    return counts;
  } finally {
    status?.(null);
    await server.app.close();
    await server.registry.shutdown();
    server.log.flush();
  }
}

/** The output file sent to a URL with PUT (a presigned upload URL, as vLLM's run-batch takes). */
async function upload(file: string, url: string): Promise<void> {
  const res = await fetch(url, { method: 'PUT', body: readFileSync(file) }).catch((err: Error) => {
    throw new UserError(`--output-file ${url}: ${err.message}`);
  });
  if (!res.ok) throw new UserError(`--output-file ${url}: the upload got HTTP ${res.status}`);
}
