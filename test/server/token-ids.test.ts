import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post } from './harness.ts';
import { MODEL, type ServedModel, startServed } from './served.ts';

// vLLM's return_token_ids, return_tokens_as_token_ids and cache_salt on the OpenAI routes.

let served: ServedModel;
before(async () => {
  served = await startServed();
});
after(() => served.close());

const PROMPT = [1, 312, 45, 907, 18];
const greedy = { model: MODEL, temperature: 0, max_tokens: 6, ignore_eos: true };

type Chunk = Record<string, unknown> & { choices: Record<string, unknown>[] };

/** The JSON chunks of an SSE answer, [DONE] left out. */
function chunksOf(text: string): Chunk[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice('data: '.length)) as Chunk);
}

/** The engine's own greedy answer to `prompt`: the ids every route must report. */
async function engineIds(prompt: number[]): Promise<number[]> {
  const engine = served.ctx.registry.resident().find((r) => r.entry.name === MODEL)!.model.engine;
  const ids: number[] = [];
  for await (const out of engine.generate({ prompt, params: { temperature: 0, maxTokens: 6, ignoreEos: true } })) {
    for (const d of out.outputs) ids.push(...d.tokenIds);
  }
  return ids;
}

test('completions with return_token_ids: each choice has its prompt ids and its answer ids, whole and streamed', async () => {
  const whole = await post(`${served.url}/v1/completions`, { ...greedy, prompt: PROMPT, return_token_ids: true });
  assert.equal(whole.status, 200, whole.text);
  const answer = await engineIds(PROMPT);
  const [choice] = whole.json.choices as Record<string, unknown>[];
  assert.deepEqual(choice!.prompt_token_ids, PROMPT);
  assert.deepEqual(choice!.token_ids, answer);

  const streamed = await post(`${served.url}/v1/completions`, {
    ...greedy,
    prompt: PROMPT,
    return_token_ids: true,
    stream: true,
  });
  const entries = chunksOf(streamed.text).flatMap((c) => c.choices);
  assert.deepEqual(entries[0]!.prompt_token_ids, PROMPT, 'the first chunk carries the prompt');
  assert.ok(
    entries.slice(1).every((e) => e.prompt_token_ids === undefined),
    'and only the first',
  );
  assert.deepEqual(
    entries.flatMap((e) => (e.token_ids as number[] | undefined) ?? []),
    answer,
  );
  assert.equal(entries.map((e) => e.text).join(''), choice!.text);

  const plain = await post(`${served.url}/v1/completions`, { ...greedy, prompt: PROMPT });
  const [bare] = plain.json.choices as Record<string, unknown>[];
  assert.ok(!('token_ids' in bare!) && !('prompt_token_ids' in bare!), 'absent unless asked');
});

test('chat with return_token_ids: prompt ids on the response (the first chunk streamed), answer ids per choice', async () => {
  const body = { ...greedy, messages: [{ role: 'user', content: 'Hi there' }], return_token_ids: true };
  const whole = await post(`${served.url}/v1/chat/completions`, body);
  assert.equal(whole.status, 200, whole.text);
  const promptIds = whole.json.prompt_token_ids as number[];
  assert.ok(Array.isArray(promptIds) && promptIds.length > 2);
  const answer = await engineIds(promptIds);
  const [choice] = whole.json.choices as Record<string, unknown>[];
  assert.deepEqual(choice!.token_ids, answer);

  const chunks = chunksOf((await post(`${served.url}/v1/chat/completions`, { ...body, stream: true })).text);
  assert.deepEqual(chunks[0]!.prompt_token_ids, promptIds);
  assert.ok(chunks.slice(1).every((c) => c.prompt_token_ids === undefined));
  assert.deepEqual(
    chunks.flatMap((c) => c.choices.flatMap((e) => (e.token_ids as number[] | undefined) ?? [])),
    answer,
  );
});

test('return_tokens_as_token_ids names every logprob token "token_id:ID", alternatives and echoed prompt too', async () => {
  const answer = await engineIds(PROMPT);
  const res = await post(`${served.url}/v1/completions`, {
    ...greedy,
    prompt: PROMPT,
    logprobs: 2,
    echo: true,
    return_tokens_as_token_ids: true,
  });
  assert.equal(res.status, 200, res.text);
  const lp = (
    res.json.choices as { logprobs: { tokens: string[]; top_logprobs: (Record<string, number> | null)[] } }[]
  )[0]!.logprobs;
  assert.deepEqual(
    lp.tokens,
    [...PROMPT, ...answer].map((id) => `token_id:${id}`),
  );
  for (const top of lp.top_logprobs.slice(1)) {
    assert.ok(
      Object.keys(top!).every((k) => /^token_id:\d+$/.test(k)),
      JSON.stringify(top),
    );
  }

  const chat = await post(`${served.url}/v1/chat/completions`, {
    ...greedy,
    messages: [{ role: 'user', content: 'Hi' }],
    logprobs: true,
    top_logprobs: 2,
    return_tokens_as_token_ids: true,
    return_token_ids: true,
  });
  const [c] = chat.json.choices as {
    token_ids: number[];
    logprobs: { content: { token: string; top_logprobs: { token: string }[] }[] };
  }[];
  assert.deepEqual(
    c!.logprobs.content.map((e) => e.token),
    c!.token_ids.map((id) => `token_id:${id}`),
  );
  assert.ok(c!.logprobs.content.every((e) => e.top_logprobs.every((t) => /^token_id:\d+$/.test(t.token))));
});

test('cache_salt: a salted request does not hit an unsalted prefix, hits its own salt; an empty salt is a 400', async () => {
  const prompt = Array.from({ length: 70 }, (_, i) => 100 + ((i * 37) % 500));
  const cached = async (salt?: string) => {
    const res = await post(`${served.url}/v1/completions`, {
      ...greedy,
      max_tokens: 1,
      prompt,
      ...(salt !== undefined && { cache_salt: salt }),
    });
    assert.equal(res.status, 200, res.text);
    const engine = served.ctx.registry.resident().find((r) => r.entry.name === MODEL)!.model.engine;
    return engine.stats().prefixCacheHits;
  };
  const start = await cached();
  assert.equal(await cached('s3cret-salt'), start, 'no hit on the unsalted blocks');
  assert.ok((await cached('s3cret-salt')) > start, 'its own salt hits');
  const bad = await post(`${served.url}/v1/chat/completions`, {
    ...greedy,
    messages: [{ role: 'user', content: 'Hi' }],
    cache_salt: '',
  });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /cache_salt/);
});
