import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post } from './harness.ts';
import { MODEL, type ServedModel, startServed } from './served.ts';

let served: ServedModel;
before(async () => {
  served = await startServed();
});
after(() => served.close());

test('a Responses request the engine refuses gets its status, streamed or not; a background one fails', async () => {
  const body = { model: MODEL, input: 'Hi', max_output_tokens: 1 << 20 };
  for (const extra of [{}, { stream: true }, { stream: true, background: true }]) {
    const r = await post(`${served.url}/v1/responses`, { ...body, ...extra });
    assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.text.slice(0, 200)}`);
    assert.match((r.json.error as { message: string }).message, /context length is \d+ tokens/);
  }
  // Without a stream, a background response is answered before the engine sees it: the refusal fails it.
  const queued = await post(`${served.url}/v1/responses`, { ...body, background: true });
  assert.equal(queued.json.status, 'queued');
  let got: Record<string, unknown> = queued.json;
  while (got.status === 'queued' || got.status === 'in_progress') {
    await new Promise((resolve) => setTimeout(resolve, 5));
    got = (await fetch(`${served.url}/v1/responses/${queued.json.id}`).then((r) => r.json())) as Record<
      string,
      unknown
    >;
  }
  assert.equal(got.status, 'failed');
  assert.match((got.error as { message: string }).message, /context length is \d+ tokens/);
});
