import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { copyModel, createModel, removeModel } from '../../store/create.ts';
import type { Modelfile } from '../../store/modelfile.ts';
import { parseModelfile, setParameter } from '../../store/modelfile.ts';
import { formatModelName, nameProblem, parseModelName } from '../../store/names.ts';
import { pullModel } from '../../store/pull.ts';
import { UserError } from '../../util/errors.ts';
import { ApiError } from '../errors.ts';
import type { ServerContext } from '../generation.ts';
import { storeEntry } from '../store-entry.ts';
import { clientGone, EventStream } from '../streaming.ts';
import { parseBody } from '../validate.ts';
import { uploadPath } from './blob-routes.ts';

const name = z.string().min(1).max(1024);
const opt = <T extends z.ZodType>(t: T) => t.nullish();

const pullRequest = z.strictObject({
  model: opt(name),
  name: opt(name),
  insecure: opt(z.boolean()),
  stream: opt(z.boolean()),
});
const deleteRequest = z.strictObject({ model: opt(name), name: opt(name) });
const copyRequest = z.strictObject({ source: name, destination: name });
const createRequest = z.strictObject({
  model: opt(name),
  name: opt(name),
  from: opt(name),
  /** Modelfile text (Ollama's older form of this request); the separate fields override what it says. */
  modelfile: opt(z.string().max(1_000_000)),
  stream: opt(z.boolean()),
  template: opt(z.string().max(1_000_000)),
  system: opt(z.string().max(1_000_000)),
  license: opt(z.union([z.string(), z.array(z.string())])),
  parameters: opt(z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.array(z.string())]))),
  messages: opt(z.array(z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string() }))),
  quantize: opt(z.string()),
  adapters: opt(z.record(z.string(), z.string())),
  files: opt(z.record(z.string(), z.string())),
});

/**
 * The uploaded files that `files` (or `adapters`, the `field`) names (`ollama create` sends a Modelfile's `FROM
 * ./model.gguf` or `FROM ./folder`, and `ADAPTER ./folder`, so: each file's base name and the digest it uploaded to
 * /api/blobs), or null without any. create.ts checks they make one GGUF file, a safetensors model folder or a PEFT
 * LoRA adapter folder.
 */
function uploadedFiles(
  files: Record<string, string> | null | undefined,
  field = 'files',
): Record<string, string> | null {
  const entries = Object.entries(files ?? {});
  if (entries.length === 0) return null;
  if (entries.length > MAX_FILES)
    throw new ApiError(400, `${field}: ${entries.length} files, at most ${MAX_FILES}`, field);
  for (const [name, digest] of entries) uploadPath(digest, `${field}["${name.slice(0, 100)}"]`);
  return files as Record<string, string>;
}
/** More files than any model folder has (Ollama's client sends the weights' shards and the folder's JSON files). */
const MAX_FILES = 1000;

/** What a model made of uploaded files shows as FROM: the file, or the folder's files. */
function filesLabel(files: Record<string, string>): string {
  const names = Object.keys(files).sort().join(', ');
  return names.length > 200 ? `${names.slice(0, 200)}...` : names;
}

/** A model name from a request: present, and unable to leave the store (400 naming the reason otherwise). */
function checkedName(value: string | null | undefined, field: string): string {
  if (!value) throw new ApiError(400, `${field} is required`, field);
  const problem = nameProblem(value);
  if (problem) {
    const shown = value.length > 200 ? `${value.slice(0, 200)}...` : value;
    throw new ApiError(400, `invalid model name ${JSON.stringify(shown)}: ${problem}`, field, 'invalid_model_name');
  }
  return value;
}

/** Store errors as HTTP: a missing model is a 404, the Hub being unreachable a 502, anything else the client's 400. */
function storeError(err: unknown, field: string): ApiError {
  if (!(err instanceof UserError)) return err as ApiError;
  const m = err.message;
  if (/not found|no such model|is not in the store|not in the Hugging Face cache/.test(m))
    return new ApiError(404, m, field);
  if (/cannot reach (the Hugging Face Hub|the registry)/.test(m)) return new ApiError(502, m, field);
  return new ApiError(400, m, field);
}

/** The `modelfile` field parsed (errors name its line, as the CLI's do), or null when absent. */
function fromModelfileText(text: string | null | undefined): Modelfile | null {
  if (text === undefined || text === null) return null;
  try {
    return parseModelfile(text, 'modelfile');
  } catch (err) {
    if (err instanceof UserError) throw new ApiError(400, err.message, 'modelfile');
    throw err;
  }
}

/**
 * The folder or GGUF file of a start-up model (`--model PATH`) that `name` names: a path the server was given, which
 * create and copy may build on (a request itself never names a path); null for other names.
 */
function servedPath(ctx: ServerContext, name: string): string | null {
  const entry = ctx.registry.nameInUse(name);
  return entry && !entry.lora && entry.ref === entry.path ? entry.path : null;
}

/** Makes a stored or cached name servable at once (or replaces its entry after create / copy). */
function register(ctx: ServerContext, model: string): void {
  const entry = storeEntry(model);
  if (entry) ctx.registry.add(entry);
}

/** POST /api/pull, POST /api/create, POST /api/copy, DELETE /api/delete (Ollama's model management). */
export function registerStoreRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/api/pull', async (request, reply) => {
    const body = parseBody(pullRequest, request.body);
    const model = checkedName(body.model ?? body.name, 'model');
    const signal = clientGone(request, reply);
    if (body.stream === false) {
      let pulled: string;
      try {
        pulled = (await pullModel(model, { signal })).name;
      } catch (err) {
        throw storeError(err, 'model');
      }
      register(ctx, pulled);
      return { status: 'success' };
    }
    const stream = new EventStream(reply, 'ndjson');
    try {
      const pulled = await pullModel(model, { signal, onProgress: (e) => stream.send(e) });
      register(ctx, pulled.name);
    } catch (err) {
      if (!signal.aborted) stream.send({ error: (err as Error).message });
    }
    stream.end();
  });

  app.post('/api/create', async (request, reply) => {
    const body = parseBody(createRequest, request.body);
    const model = checkedName(body.model ?? body.name, 'model');
    const base = fromModelfileText(body.modelfile);
    const files = uploadedFiles(body.files);
    const adapterFiles = uploadedFiles(body.adapters, 'adapters');
    const from = files ? filesLabel(files) : checkedName(body.from ?? base?.from, 'from');
    const given: Modelfile['parameters'] = {};
    for (const [key, value] of Object.entries(body.parameters ?? {})) {
      setParameter(given, key, value, (msg) => {
        throw new ApiError(400, msg, `parameters.${key}`);
      });
    }
    const license = body.license === undefined || body.license === null ? null : [body.license].flat();
    const modelfile: Modelfile = {
      from,
      fromLine: body.from ? 0 : (base?.fromLine ?? 0),
      parameters: { ...base?.parameters, ...given },
      system: body.system ?? base?.system,
      template: body.template ?? base?.template,
      templateLine: body.template ? undefined : base?.templateLine,
      messages: body.messages ?? base?.messages ?? [],
      license: license ?? base?.license ?? [],
      adapter: base?.adapter,
      adapterLine: base?.adapterLine,
    };
    try {
      await createModel(model, modelfile, {
        file: base ? 'modelfile' : '/api/create',
        quantize: body.quantize ?? undefined,
        fromFiles: files ?? undefined,
        adapterFiles: adapterFiles ?? undefined,
        fromPath: (!files && servedPath(ctx, from)) || undefined,
      });
    } catch (err) {
      throw storeError(err, 'from');
    }
    // A model loaded under this name keeps its old layers until unloaded: drop it so the next request reloads.
    await ctx.registry.remove(formatModelName(parseModelName(model)));
    register(ctx, model);
    if (body.stream === false) return { status: 'success' };
    const stream = new EventStream(reply, 'ndjson');
    const steps = body.quantize ? [`quantizing to ${body.quantize.toUpperCase()}`] : ['using existing layers'];
    for (const status of [...steps, 'writing manifest', 'success']) stream.send({ status });
    stream.end();
  });

  app.post('/api/copy', async (request) => {
    const body = parseBody(copyRequest, request.body);
    const source = checkedName(body.source, 'source');
    const destination = checkedName(body.destination, 'destination');
    const served = servedPath(ctx, source);
    try {
      // A start-up folder model is copied as Ollama copies any: a stored name over the same files.
      if (served) {
        const modelfile = { from: source, fromLine: 0, parameters: {}, messages: [], license: [] };
        await createModel(destination, modelfile, { fromPath: served, file: '/api/copy' });
      } else copyModel(source, destination);
    } catch (err) {
      throw storeError(err, 'source');
    }
    await ctx.registry.remove(formatModelName(parseModelName(destination)));
    register(ctx, destination);
    return {};
  });

  app.delete('/api/delete', async (request) => {
    const body = parseBody(deleteRequest, request.body);
    const model = checkedName(body.model ?? body.name, 'model');
    if (servedPath(ctx, model)) {
      throw new ApiError(
        400,
        `"${model}" is served from a folder given at start-up (--model); its files are not the store's`,
        'model',
      );
    }
    try {
      removeModel(model);
    } catch (err) {
      throw storeError(err, 'model');
    }
    await ctx.registry.remove(formatModelName(parseModelName(model)));
    return {};
  });
}
