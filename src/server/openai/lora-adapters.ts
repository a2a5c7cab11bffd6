import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { readLoraAdapter } from '../../loader/lora-adapter.ts';
import { UserError } from '../../util/errors.ts';
import { ApiError } from '../errors.ts';
import type { ServerContext } from '../generation.ts';
import { adaptedEntry, type ModelEntry } from '../models.ts';
import { parseBody } from '../validate.ts';

const name = z.string().min(1).max(1024);

const loadRequest = z.strictObject({
  lora_name: name,
  lora_path: z.string().min(1).max(4096),
  /** pagoda's: the served model to adapt (default: the first `--model`). */
  base_model_name: name.nullish(),
  load_inplace: z.boolean().nullish(),
});

const unloadRequest = z.strictObject({
  lora_name: name,
  /** vLLM's request has it; adapters here are found by name. */
  lora_int_id: z.number().int().nullish(),
});

/**
 * vLLM's runtime LoRA routes: POST /v1/load_lora_adapter serves a PEFT adapter folder merged into a served model
 * under a new name (loaded on its first request, like `--lora-modules`); /v1/unload_lora_adapter forgets one. They
 * read folders a request names, so they answer only when the server was started with --allow-runtime-lora-updating.
 */
export function registerLoraAdapters(app: FastifyInstance, ctx: ServerContext): void {
  const allowed = () => {
    if (!ctx.config.runtimeLoraUpdating) {
      throw new ApiError(
        403,
        'runtime LoRA updating is off: start the server with --allow-runtime-lora-updating ' +
          '(PAGODA_ALLOW_RUNTIME_LORA_UPDATING=1)',
      );
    }
  };
  const adapterNamed = (loraName: string): ModelEntry | undefined =>
    ctx.registry.entries().find((e) => e.name === loraName);

  app.post('/v1/load_lora_adapter', async (request, reply) => {
    allowed();
    const body = parseBody(loadRequest, request.body);
    const existing = adapterNamed(body.lora_name);
    if (existing && !(existing.lora && body.load_inplace)) {
      const n = body.lora_name;
      const message = existing.lora
        ? `The lora adapter '${n}' has already been loaded (load_inplace: true replaces it).`
        : `"${n}" is already a served model's name`;
      throw new ApiError(400, message, 'lora_name');
    }
    const base = baseOf(ctx, body.base_model_name);
    const folder = resolve(body.lora_path);
    try {
      readLoraAdapter(folder).close();
    } catch (err) {
      if (err instanceof UserError) throw new ApiError(400, `lora_path: ${err.message}`, 'lora_path');
      throw err;
    }
    // A replaced adapter's model (its old weights) unloads now if idle, else after its requests.
    if (existing) await ctx.registry.remove(existing.name);
    ctx.registry.add(adaptedEntry(base, body.lora_name, folder));
    return reply.type('text/plain').send(`Success: LoRA adapter '${body.lora_name}' added successfully.`);
  });

  app.post('/v1/unload_lora_adapter', async (request, reply) => {
    allowed();
    const body = parseBody(unloadRequest, request.body);
    if (!adapterNamed(body.lora_name)?.lora) {
      throw new ApiError(404, `The lora adapter '${body.lora_name}' cannot be found.`, 'lora_name');
    }
    await ctx.registry.remove(body.lora_name);
    return reply.type('text/plain').send(`Success: LoRA adapter '${body.lora_name}' removed successfully.`);
  });
}

/** The model an adapter adapts: the one named, else the first start-up model; never an adapted model itself. */
function baseOf(ctx: ServerContext, baseName: string | null | undefined): ModelEntry {
  const base = baseName ? ctx.registry.resolve(baseName) : ctx.registry.entries().find((e) => e.pinned);
  if (!base) throw new ApiError(400, 'base_model_name is required (no model was named at start-up)', 'base_model_name');
  if (base.lora) {
    throw new ApiError(400, `base_model_name: "${base.name}" is itself an adapted model`, 'base_model_name');
  }
  return base;
}
