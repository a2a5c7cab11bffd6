import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { UserError } from '../../util/errors.ts';
import { checkAdapterFor } from '../adapter-check.ts';
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
  app.post('/v1/load_lora_adapter', async (request, reply) => {
    allowed();
    const body = parseBody(loadRequest, request.body);
    // Any name a request could already mean (a model, an alias, a model of the store) is taken, but an adapter's own
    // name with load_inplace.
    const existing = ctx.registry.nameInUse(body.lora_name);
    const replaces = existing?.lora !== undefined && existing.name === body.lora_name && body.load_inplace === true;
    if (existing && !replaces) {
      const n = body.lora_name;
      const message =
        existing.lora && existing.name === n
          ? `The lora adapter '${n}' has already been loaded (load_inplace: true replaces it).`
          : `"${n}" already names a model ("${existing.name}")`;
      throw new ApiError(400, message, 'lora_name');
    }
    const base = baseOf(ctx, body.base_model_name);
    const folder = resolve(body.lora_path);
    try {
      checkAdapterFor(base, folder, ctx.config);
    } catch (err) {
      if (err instanceof UserError) throw new ApiError(400, `lora_path: ${err.message}`, 'lora_path');
      throw err;
    }
    // The new entry takes the name at once; a replaced adapter's model (its old weights) unloads when idle.
    const replaced = existing ? ctx.registry.remove(existing.name) : null;
    ctx.registry.add(adaptedEntry(base, body.lora_name, folder));
    await replaced;
    return reply.type('text/plain').send(`Success: LoRA adapter '${body.lora_name}' added successfully.`);
  });

  app.post('/v1/unload_lora_adapter', async (request, reply) => {
    allowed();
    const body = parseBody(unloadRequest, request.body);
    if (!ctx.registry.entries().some((e) => e.name === body.lora_name && e.lora)) {
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
