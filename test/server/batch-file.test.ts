import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BATCH_URLS, type BatchOutputLine, runBatchFile } from '../../src/server/batch-file.ts';

async function* linesOf(lines: string[]) {
  yield* lines;
}

const request = (id: string, body: object = { model: 'm', prompt: id }, url = '/v1/completions') =>
  JSON.stringify({ custom_id: id, method: 'POST', url, body });

test('answers are written in the input order, however they finish, and no more than `concurrency` run at once', async () => {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  let running = 0;
  let most = 0;
  const written: BatchOutputLine[] = [];
  const counts = await runBatchFile(
    linesOf(ids.map((id) => request(id))),
    async (url, body) => {
      most = Math.max(most, ++running);
      // Later requests answer sooner: the writer must hold them until the earlier ones are in.
      await new Promise((r) => setTimeout(r, 5 * (ids.length - ids.indexOf(String(body.prompt)))));
      running--;
      return { status: 200, body: { url, echo: body.prompt } };
    },
    (line) => {
      written.push(JSON.parse(line));
    },
    3,
  );
  assert.deepEqual(counts, { requests: 7, succeeded: 7, failed: 0 });
  assert.equal(most, 3);
  assert.deepEqual(
    written.map((w) => [w.custom_id, w.response!.status_code, (w.response!.body as { echo: string }).echo, w.error]),
    ids.map((id) => [id, 200, id, null]),
  );
  assert.equal(new Set(written.map((w) => w.id)).size, ids.length, 'each answer has its own id');
  assert.match(written[0]!.id, /^batch_req_[0-9a-f]{32}$/);
  assert.match(written[0]!.response!.request_id, /^req_[0-9a-f]{32}$/);
});

test('a line that is not a request gets an answer saying why, by line number; the batch goes on', async () => {
  const sent: string[] = [];
  const written: BatchOutputLine[] = [];
  const counts = await runBatchFile(
    linesOf([
      request('ok'),
      'not json',
      '',
      '[1]',
      JSON.stringify({ method: 'POST', url: '/v1/completions', body: {} }),
      JSON.stringify({ custom_id: 'get', method: 'GET', url: '/v1/completions', body: {} }),
      request('url', {}, '/v1/models'),
      JSON.stringify({ custom_id: 'nobody', method: 'POST', url: '/v1/embeddings', body: 'x' }),
      request('stream', { model: 'm', prompt: 'x', stream: true }),
      request('refused'),
      request('thrown'),
      request('ok'),
    ]),
    async (_url, body) => {
      sent.push(String(body.prompt));
      if (body.prompt === 'refused') return { status: 400, body: { error: { message: 'bad' } } };
      if (body.prompt === 'thrown') throw new Error('the engine stopped');
      return { status: 200, body: {} };
    },
    (line) => {
      written.push(JSON.parse(line));
    },
    4,
  );
  assert.deepEqual(sent, ['ok', 'refused', 'thrown'], 'only requests reach the routes');
  assert.deepEqual(counts, { requests: 11, succeeded: 1, failed: 10 });
  // The JSON parser's own words vary with the runtime: only that they are there.
  const message = (w: BatchOutputLine) => w.error?.message.replace(/not JSON \(.+\)$/, 'not JSON (…)') ?? null;
  const said = written.map((w) => [w.custom_id, w.response?.status_code ?? null, message(w)]);
  assert.deepEqual(said, [
    ['ok', 200, null],
    [null, null, 'line 2: not JSON (…)'],
    [null, null, 'line 4: expected a JSON object'],
    [null, null, 'line 5: custom_id: expected a string'],
    ['get', null, 'line 6: method: expected "POST", got "GET"'],
    ['url', null, `line 7: url "/v1/models": expected one of ${BATCH_URLS.join(', ')}`],
    ['nobody', null, 'line 8: body: expected a JSON object'],
    ['stream', null, 'line 9: body.stream: a batch answers whole (remove "stream": true)'],
    ['refused', 400, null],
    ['thrown', null, 'line 11: the engine stopped'],
    ['ok', null, 'line 12: custom_id "ok": already used on line 1'],
  ]);
  assert.deepEqual(written[8]!.response!.body, { error: { message: 'bad' } }, "a route's error answer is kept whole");
  assert.equal(written[9]!.error!.code, 'internal_error');
});

test('a write that fails stops the batch: no more lines are read, and its error is thrown', async () => {
  const sent: string[] = [];
  let writes = 0;
  await assert.rejects(
    runBatchFile(
      linesOf(['a', 'b', 'c', 'd', 'e', 'f'].map((id) => request(id))),
      async (_url, body) => {
        sent.push(String(body.prompt));
        await new Promise((r) => setTimeout(r, 1));
        return { status: 200, body: {} };
      },
      () => {
        if (++writes === 2) throw new Error('ENOSPC: no space left on device, write');
      },
      1,
    ),
    /ENOSPC/,
  );
  assert.ok(sent.length < 6, `the batch stopped early (sent ${sent.join(', ')})`);
});
