import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { PoolingTask } from '../../models/pooling-model.ts';
import { formatModelfile, formatParameters } from '../../store/modelfile.ts';
import { looksLikePath } from '../../store/names.ts';
import { templateThinks } from '../chat-output.ts';
import { ApiError } from '../errors.ts';
import type { ServerContext } from '../generation.ts';
import type { ModelInfo } from '../model-info.ts';
import type { ModelEntry } from '../models.ts';
import { templateRendersTools } from '../tool-requests.ts';
import { parseBody } from '../validate.ts';
import { showRequest } from './schemas.ts';

/** What /api/show lists an embedding or reranking model as able to do ('rerank': a name Ollama lacks). */
const POOLING_CAPABILITY: Record<PoolingTask, string> = { embed: 'embedding', score: 'rerank' };

const QUANT: Record<string, string> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

/**
 * The expiry /api/ps reports for a model that is not counting down (pinned, keep_alive -1, or busy), as Ollama reports
 * keep_alive -1: now plus Go's longest duration (2^63 - 1 ns, some 292 years), which `ps` prints as "Forever".
 */
const NEVER_MS = 9_223_372_036_854;

/** Ollama's HumanNumber: "8B", "3.2B", "494.03M", "260K". */
function parameterSize(n: number): string {
  const scaled = (unit: number, digits: number, suffix: string) => {
    const x = n / unit;
    return `${Number.isInteger(x) ? x : x.toFixed(digits)}${suffix}`;
  };
  if (n >= 1e9) return scaled(1e9, 1, 'B');
  if (n >= 1e6) return scaled(1e6, 2, 'M');
  if (n >= 1e3) return `${Math.round(n / 1e3)}K`;
  return String(n);
}

function details(info: ModelInfo) {
  return {
    parent_model: '',
    format: info.format,
    family: info.family,
    families: [info.family],
    parameter_size: parameterSize(info.parameterCount),
    quantization_level: QUANT[info.quantization] ?? info.quantization.toUpperCase(),
  };
}

/**
 * A stored model's digest as its store has it (Ollama's manifest digest for Ollama's models), else a stable
 * identifier of the model's files and name as the server sees them.
 */
function digest(entry: ModelEntry, info: ModelInfo): string {
  if (entry.digest) return entry.digest.replace(/^sha256:/, '');
  return createHash('sha256')
    .update(
      `${entry.name}\n${entry.path}\n${info.sizeBytes}\n${info.modifiedAt.toISOString()}\n${JSON.stringify(info.config)}`,
    )
    .digest('hex');
}

/** A Modelfile FROM as /api/show tells it: a path is cut to its last part, so no server path leaves the server. */
function shownFrom(from: string): string {
  return looksLikePath(from) ? (from.split(/[\\/]/).filter(Boolean).at(-1) ?? '') : from;
}

/** A GGUF file's metadata as it is, else GGUF-style model_info keys from config.json. */
function modelInfo(info: ModelInfo): Record<string, unknown> {
  if (info.ggufMetadata) return info.ggufMetadata;
  const c = info.config;
  const arch = info.family;
  const out: Record<string, unknown> = {
    'general.architecture': arch,
    'general.parameter_count': info.parameterCount,
    [`${arch}.context_length`]: info.maxContextLength,
  };
  const keys: [string, string][] = [
    ['hidden_size', 'embedding_length'],
    ['num_hidden_layers', 'block_count'],
    ['intermediate_size', 'feed_forward_length'],
    ['num_attention_heads', 'attention.head_count'],
    ['num_key_value_heads', 'attention.head_count_kv'],
    ['vocab_size', 'vocab_size'],
  ];
  for (const [from, to] of keys) if (typeof c[from] === 'number') out[`${arch}.${to}`] = c[from];
  return out;
}

/**
 * What the model can do, as Ollama lists it: completion always; tools, thinking and insert (fill-in-the-middle, a Go
 * template's `.Suffix`) when its template knows them.
 */
function capabilities(template: string | null): string[] {
  const out = ['completion'];
  if (template && templateRendersTools(template)) out.push('tools');
  if (template && templateThinks(template)) out.push('thinking');
  if (template && /\.Suffix\b/.test(template)) out.push('insert');
  return out;
}

/** GET /api/tags, POST /api/show, GET /api/ps */
export function registerModelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/tags', async () => {
    const models = await Promise.all(
      ctx.registry.listed().map(async (entry) => {
        const info = await ctx.registry.info(entry).catch(() => null);
        if (!info) return null;
        return {
          name: entry.name,
          model: entry.name,
          modified_at: info.modifiedAt.toISOString(),
          size: info.sizeBytes,
          digest: digest(entry, info),
          details: details(info),
        };
      }),
    );
    return { models: models.filter((m) => m !== null) };
  });

  app.post('/api/show', async (request) => {
    const body = parseBody(showRequest, request.body);
    const name = body.model ?? body.name;
    if (!name) throw new ApiError(400, 'model is required', 'model');
    const entry = ctx.registry.resolve(name);
    const info = await ctx.registry.info(entry);
    const m = info.manifest;
    return {
      license: m?.license.join('\n') ?? '',
      modelfile: m
        ? formatModelfile({ ...m, from: shownFrom(m.from) })
        : `# Modelfile generated by pagoda\nFROM ${entry.name}\n`,
      parameters: formatParameters(info.parameters ?? m?.parameters ?? {}).join('\n'),
      template: info.chatTemplate ?? '',
      system: m?.system ?? '',
      messages: m?.messages ?? [],
      details: details(info),
      model_info: modelInfo(info),
      capabilities:
        info.task && info.task !== 'generate' ? [POOLING_CAPABILITY[info.task]] : capabilities(info.chatTemplate),
      modified_at: info.modifiedAt.toISOString(),
    };
  });

  app.get('/api/ps', async () => ({
    models: ctx.registry.resident().map((r) => ({
      name: r.entry.name,
      model: r.entry.name,
      size: r.info.sizeBytes + r.model.kvCacheBytes,
      digest: digest(r.entry, r.info),
      details: details(r.info),
      expires_at: (r.expiresAt ?? new Date(Date.now() + NEVER_MS)).toISOString(),
      size_vram: r.model.backend === 'cpu' ? 0 : r.info.sizeBytes + r.model.kvCacheBytes,
      context_length: r.model.contextLength,
    })),
  }));
}
