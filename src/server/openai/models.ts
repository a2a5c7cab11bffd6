import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../generation.ts';
import type { ModelEntry } from '../models.ts';

/** GET /v1/models and /v1/models/:model */
export function registerModels(app: FastifyInstance, ctx: ServerContext): void {
  /** A model's card under `id`: its name, or one of its `--served-model-name` aliases (vLLM lists each). */
  const card = async (entry: ModelEntry, id: string) => {
    const info = await ctx.registry.info(entry);
    return {
      id,
      object: 'model',
      created: Math.floor(info.modifiedAt.getTime() / 1000),
      owned_by: 'pagoda',
      max_model_len: info.maxContextLength,
      // vLLM's card of a LoRA adapter names the model it adapts.
      ...(entry.parent && { parent: entry.parent }),
    };
  };
  app.get('/v1/models', async () => {
    const named = ctx.registry.listed().flatMap((e) => [e.name, ...(e.aliases ?? [])].map((id) => [e, id] as const));
    const cards = await Promise.all(named.map(([e, id]) => card(e, id).catch(() => null)));
    return { object: 'list', data: cards.filter((c) => c !== null) };
  });
  app.get<{ Params: { model: string } }>('/v1/models/*', async (request) => {
    const name = (request.params as Record<string, string>)['*'];
    const entry = ctx.registry.resolve(name);
    return card(entry, entry.aliases?.includes(name) ? name : entry.name);
  });
}
