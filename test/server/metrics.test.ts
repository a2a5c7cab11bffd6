import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.ts';
import { EngineModelSource } from '../../src/server/engine-source.ts';
import { parsePrometheus, total } from '../../src/server/ui/static/prometheus.js';
import { projectRoot } from '../helpers/fixtures.ts';
import { post, request, startTestServer, type TestServer } from './harness.ts';

const fixtures = join(projectRoot, 'test', 'fixtures', 'models');
const LLAMA = 'tiny-llama';

let server: TestServer;
before(async () => {
  const config = { ...resolveServeConfig({}, {}), port: 0 };
  const source = new EngineModelSource(config, { device: 'cpu', log: () => {} });
  const entry = (name: string) => ({ name, path: join(fixtures, name), ref: join(fixtures, name) });
  server = await startTestServer(source, [entry(LLAMA)], config);
});
after(() => server.close());

type Samples = ReturnType<typeof parsePrometheus>;

async function scrape(): Promise<Samples> {
  return parsePrometheus((await request(`${server.url}/metrics`)).text);
}

/** How much a metric's series matching `labels` grew between two scrapes. */
const grew = (before: Samples, after: Samples, name: string, labels: Record<string, string>) =>
  total(after, name, labels) - total(before, name, labels);

const generate = (options: Record<string, number>) =>
  post(`${server.url}/api/generate`, { model: LLAMA, prompt: 'Once upon a time', stream: false, options });

test("request_success_total counts each finished sequence under vLLM's finished_reason label", async () => {
  const before = await scrape();
  assert.equal((await generate({ num_predict: 3 })).status, 200);
  const after = await scrape();
  const name = 'pagoda_request_success_total';
  assert.equal(grew(before, after, name, { model_name: LLAMA, finished_reason: 'length' }), 1);
  assert.equal(grew(before, after, name, { model_name: LLAMA }), 1);
  assert.ok(after.filter((s) => s.name === name).every((s) => !('finish_reason' in s.labels)));
});
