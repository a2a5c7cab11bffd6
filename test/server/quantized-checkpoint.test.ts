import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { startServer } from '../../src/server/serve.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { post, request } from './harness.ts';

test('serve: an AWQ checkpoint fails to load with its one line, as a 500 to requests, and the server stays up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-awq-'));
  try {
    cpSync(join(projectRoot, 'test/fixtures/models/tiny-llama'), dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    config.quantization_config = { quant_method: 'awq', bits: 4, group_size: 128, version: 'gemm' };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const line = `${join(dir, 'config.json')}: quantization_config.quant_method "awq" is not supported (pagoda reads fp8 and compressed-tensors FP8 checkpoints, and GGUF files)`;
    const name = basename(dir);
    const serve = { ...resolveServeConfig({}, {}), port: 0, models: [dir] };
    const server = await startServer(serve, { log: () => {} }, () => {});
    try {
      await assert.rejects(server.ready, (e: Error) => e.message === `model "${name}" failed to load: ${line}`);
      const res = await post(`${server.url}/v1/chat/completions`, {
        model: name,
        messages: [{ role: 'user', content: 'hi' }],
      });
      assert.equal(res.status, 500);
      assert.equal(
        (res.json as { error: { message: string } }).error.message,
        `model "${name}" failed to load: ${line}`,
      );
      assert.equal((await request(`${server.url}/v1/models`)).status, 200, 'the server still answers');
    } finally {
      await server.shutdown();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
