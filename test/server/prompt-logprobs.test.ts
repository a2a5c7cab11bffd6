import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post } from './harness.ts';
import { MODEL, type ServedModel, startServed } from './served.ts';

let served: ServedModel;
before(async () => {
  served = await startServed();
});
after(() => served.close());

const PREFIX = [1, 312, 45, 907, 18];

interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

test("echo with logprobs scores the prompt as lm-evaluation-harness reads it: a greedy continuation's own logprobs", async () => {
  // The model's greedy continuation of PREFIX, with each token's logprob as it was generated (the engine's own ids).
  await post(`${served.url}/v1/completions`, { model: MODEL, prompt: PREFIX, max_tokens: 1 });
  const engine = served.ctx.registry.resident().find((r) => r.entry.name === MODEL)!.model.engine;
  const continuation: number[] = [];
  const gen = { token_logprobs: [] as number[] };
  const params = { temperature: 0, maxTokens: 5, ignoreEos: true, logprobs: 1 };
  for await (const out of engine.generate({ prompt: PREFIX, params })) {
    for (const d of out.outputs) {
      continuation.push(...d.tokenIds);
      gen.token_logprobs.push(...(d.logprobs ?? []).map((l) => l.logprob));
    }
  }
  const prompt = [...PREFIX, ...continuation];
  const scored = await post(`${served.url}/v1/completions`, {
    model: MODEL,
    prompt,
    max_tokens: 1,
    temperature: 0,
    logprobs: 1,
    echo: true,
  });
  assert.equal(scored.status, 200, scored.text);
  const lp = (scored.json.choices as { logprobs: LegacyLogprobs }[])[0]!.logprobs;
  assert.equal(lp.tokens.length, prompt.length + 1, 'every prompt token, then the answer');
  assert.equal(lp.token_logprobs[0], null, 'the first prompt token has none');
  assert.equal(lp.top_logprobs[0], null);
  // lm-eval: the continuation's logprobs are token_logprobs[ctxlen:-1]; greedy when each is its top alternative.
  const ctx = PREFIX.length;
  const cont = lp.token_logprobs.slice(ctx, -1) as number[];
  for (const [i, v] of cont.entries()) {
    assert.ok(Math.abs(v - gen.token_logprobs[i]!) < 1e-4, `token ${i}: ${v} vs ${gen.token_logprobs[i]}`);
  }
  lp.top_logprobs.slice(ctx, -1).forEach((top, i) => {
    const best = Object.entries(top!).sort((a, b) => b[1] - a[1])[0]![0];
    assert.equal(best, lp.tokens[ctx + i], `token ${i} is the greedy one`);
  });
  assert.deepEqual(
    lp.text_offset.slice(1),
    lp.tokens.slice(0, -1).map((_, i) => lp.tokens.slice(0, i + 1).join('').length),
    'offsets run over the echoed tokens',
  );
});

test("vLLM's prompt_logprobs: per prompt token its own and its alternatives' logprob, rank and text", async () => {
  const body = { model: MODEL, prompt: PREFIX, max_tokens: 1, prompt_logprobs: 2 };
  const r = await post(`${served.url}/v1/completions`, body);
  const rows = (
    r.json.choices as {
      prompt_logprobs: (Record<string, { logprob: number; rank: number; decoded_token: string }> | null)[];
    }[]
  )[0]!.prompt_logprobs;
  assert.equal(rows.length, PREFIX.length);
  assert.equal(rows[0], null);
  for (let i = 1; i < rows.length; i++) {
    const row = rows[i]!;
    const own = row[String(PREFIX[i])]!;
    assert.ok(own.rank >= 1 && own.logprob <= 0);
    const ranked = Object.values(row).sort((a, b) => a.rank - b.rank);
    assert.equal(ranked[0]!.rank, 1, 'the most likely token is there, rank 1');
    assert.ok(Object.keys(row).length === 2 || Object.keys(row).length === 3, 'two alternatives and the token itself');
    assert.equal(Object.values(row).filter((e) => e.rank < own.rank).length, Math.min(own.rank - 1, 2), 'ranks agree');
  }
  const chat = await post(`${served.url}/v1/chat/completions`, {
    model: MODEL,
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 1,
    prompt_logprobs: 0,
  });
  const chatRows = chat.json.prompt_logprobs as unknown[];
  assert.equal(chatRows[0], null);
  assert.ok(chatRows.length > 3 && chatRows.slice(1).every((row) => Object.keys(row as object).length === 1));
  const streamed = await post(`${served.url}/v1/completions`, { ...body, stream: true });
  assert.equal(streamed.status, 400);
  assert.match(
    (streamed.json.error as { message: string }).message,
    /prompt_logprobs are not available when stream is true/,
  );
});
