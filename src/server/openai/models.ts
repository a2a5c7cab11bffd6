import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../generation.ts';

/** GET /v1/models and /v1/models/:model */
export function registerModels(app: FastifyInstance, ctx: ServerContext): void {
  const card = async (name: string) => {
    const entry = ctx.registry.resolve(name);
    const info = await ctx.registry.info(entry);
    return {
      id: entry.name,
      object: 'model',
      created: Math.floor(info.modifiedAt.getTime() / 1000),
      owned_by: 'pagoda',
      max_model_len: info.maxContextLength,
      // vLLM's card of a LoRA adapter names the model it adapts.
      ...(entry.parent && { parent: entry.parent }),
    };
  };
  app.get('/v1/models', async () => {
    const cards = await Promise.all(ctx.registry.entries().map((e) => card(e.name).catch(() => null)));
    return { object: 'list', data: cards.filter((c) => c !== null) };
  });
  app.get<{ Params: { model: string } }>('/v1/models/*', async (request) =>
    card((request.params as Record<string, string>)['*']),
  );
}
