import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Ollama } from 'ollama';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { startTestServer } from './harness.ts';
import { MODEL_DIR } from './served.ts';

const dir = mkdtempSync(join(tmpdir(), 'pagoda-show-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test("/api/show's parameters list generation_config.json's sampling values (what a client's defaults build on)", async () => {
  const model = join(dir, 'sampled');
  cpSync(MODEL_DIR, model, { recursive: true });
  writeFileSync(
    join(model, 'generation_config.json'),
    JSON.stringify({ eos_token_id: 2, temperature: 0.6, top_p: 0.9, top_k: 20, repetition_penalty: 1.05 }),
  );
  const config = resolveServeConfig({}, {});
  const source = new EngineModelSource(config, { log: () => {} });
  const server = await startTestServer(source, [{ name: 'sampled', path: model, ref: model }], config);
  try {
    const shown = await new Ollama({ host: server.url }).show({ model: 'sampled' });
    assert.deepEqual(shown.parameters.split('\n').sort(), [
      'repeat_penalty 1.05',
      'temperature 0.6',
      'top_k 20',
      'top_p 0.9',
    ]);
  } finally {
    await server.close();
  }
});
