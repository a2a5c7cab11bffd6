import type { RequestOutput } from '../../engine/types.ts';
import type { CompletionRequest } from './schemas.ts';

/** The prompts of a completions request: one for a string or a token-id list, each item of a list of either. */
export function promptList(prompt: CompletionRequest['prompt']): (string | number[])[] {
  if (typeof prompt === 'string' || typeof prompt[0] === 'number') return [prompt as string | number[]];
  return prompt as (string | number[])[];
}

/**
 * The outputs of one engine request per prompt as one stream, interleaved as they come, with choice `j` of prompt
 * `i` renumbered `i * n + j` (OpenAI's legacy API and vLLM). A failure of any source ends the stream with it.
 */
export async function* mergeOutputs(
  sources: readonly AsyncGenerator<RequestOutput>[],
  n: number,
): AsyncGenerator<RequestOutput> {
  const pending = new Map<number, Promise<{ i: number; result: IteratorResult<RequestOutput> }>>();
  const pull = (i: number) => {
    const next = sources[i].next().then((result) => ({ i, result }));
    // A source still running when another fails must not surface as an unhandled rejection.
    next.catch(() => {});
    pending.set(i, next);
  };
  sources.forEach((_, i) => {
    pull(i);
  });
  while (pending.size > 0) {
    const { i, result } = await Promise.race(pending.values());
    if (result.done) {
      pending.delete(i);
      continue;
    }
    pull(i);
    const out = result.value;
    yield { ...out, outputs: out.outputs.map((o) => ({ ...o, index: i * n + o.index })) };
  }
}
