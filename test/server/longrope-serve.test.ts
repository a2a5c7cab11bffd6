import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { post, startTestServer } from './harness.ts';

const phi3 = modelFixture('tiny-phi3-longrope');
const NAME = 'tiny-phi3-longrope';

/** Serves the fixture with `maxModelLen` (none: the default) and completes golden `file`'s first prompt greedily. */
async function complete(file: string, maxModelLen?: number): Promise<{ text: string; log: string[]; want: string }> {
  const golden = JSON.parse(readFileSync(join(phi3.path, file), 'utf8')).prompts[0];
  const log: string[] = [];
  const config = resolveServeConfig({}, {});
  const source = new EngineModelSource(config, { maxModelLen, log: (line) => log.push(line) });
  const server = await startTestServer(source, [{ name: NAME, path: phi3.path, ref: phi3.path }], config);
  try {
    const body = { model: NAME, prompt: golden.text, max_tokens: golden.greedy_ids.length, temperature: 0 };
    const r = await post(`${server.url}/v1/completions`, body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const text = (r.json.choices as { text: string }[])[0]!.text;
    return { text, log, want: golden.greedy_text };
  } finally {
    await server.close();
  }
}

test('pagoda serve: --max-model-len reaches the LongRoPE choice, and the load log says which', {
  skip: phi3.skip,
}, async () => {
  const short = await complete('golden.json', 64);
  assert.equal(short.text, short.want);
  assert.ok(
    short.log.includes(
      `${NAME}: LongRoPE: short factors (max model len 64 is within original_max_position_embeddings 64)`,
    ),
    short.log.join('\n'),
  );
  const long = await complete('golden_long.json');
  assert.equal(long.text, long.want);
  assert.ok(
    long.log.some((l) => l.startsWith(`${NAME}: LongRoPE: long factors`)),
    long.log.join('\n'),
  );
});
