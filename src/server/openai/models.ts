import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../generation.ts';
import type { ModelEntry } from '../models.ts';
import { completionId } from './common.ts';

/** vLLM's ModelPermission, with its defaults: what a client may do with the model here. */
function modelPermission(created: number) {
  return {
    id: completionId('modelperm'),
    object: 'model_permission',
    created,
    allow_create_engine: false,
    allow_sampling: true,
    allow_logprobs: true,
    allow_search_indices: false,
    allow_view: true,
    allow_fine_tuning: false,
    organization: '*',
    group: null,
    is_blocking: false,
  };
}

/** GET /v1/models and /v1/models/:model */
export function registerModels(app: FastifyInstance, ctx: ServerContext): void {
  /** A model's card under `id`: its name, or one of its `--served-model-name` aliases (vLLM lists each). */
  const card = async (entry: ModelEntry, id: string) => {
    const info = await ctx.registry.info(entry);
    const created = Math.floor(info.modifiedAt.getTime() / 1000);
    return {
      id,
      object: 'model',
      created,
      owned_by: 'pagoda',
      // vLLM's: where the weights come from (the adapter's folder for an adapter), and the model an adapter adapts.
      root: entry.lora ?? entry.ref,
      parent: entry.parent ?? null,
      max_model_len: info.maxContextLength,
      permission: [modelPermission(created)],
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
