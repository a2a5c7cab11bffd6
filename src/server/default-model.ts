import { badRequest } from './errors.ts';
import type { ServerContext } from './generation.ts';

/** What a route's model must do: embed or rerank (`pooling`), or anything with a tokenizer (`any`). */
export type ModelKind = 'pooling' | 'any';

/**
 * The model a vLLM request that names none means (vLLM serves one model): the one model of the kind the route needs,
 * among the `--model` ones first, else among every listed model; none or several are a 400 naming the `model` field
 * (and the candidates).
 */
export async function defaultModel(ctx: ServerContext, kind: ModelKind): Promise<string> {
  const listed = ctx.registry.listed();
  const fits = async (names: typeof listed) => {
    const ok = await Promise.all(
      names.map(
        async (e) =>
          kind === 'any' || ((await ctx.registry.info(e).catch(() => null))?.task ?? 'generate') !== 'generate',
      ),
    );
    return names.filter((_, i) => ok[i]).map((e) => e.name);
  };
  const pinned = await fits(listed.filter((e) => e.pinned));
  const candidates = pinned.length ? pinned : await fits(listed);
  if (candidates.length === 1) return candidates[0]!;
  const what = kind === 'pooling' ? 'embedding or reranking model' : 'model';
  if (candidates.length === 0) throw badRequest(`model is required: this server has no ${what} to default to`, 'model');
  const shown = candidates.slice(0, 10).join(', ') + (candidates.length > 10 ? ', …' : '');
  throw badRequest(`model is required: several models could answer (${shown}); name one`, 'model');
}
