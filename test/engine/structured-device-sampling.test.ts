import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { SamplingRow } from '../../src/backend/backend.ts';
import { loadEngine } from '../../src/engine/load.ts';
import type { GenerateRequest } from '../../src/engine/types.ts';
import type { StepLogits } from '../../src/runner/model-runner.ts';
import { SCHEMAS } from '../grammar/schemas.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { jsonValidator, schemaViolation } from '../helpers/json-validator.ts';
import { referenceSample } from '../helpers/sampling-reference.ts';

const fixture = modelFixture('tiny-qwen2');
const loaded = fixture.skip ? null : loadEngine(fixture.path, { device: 'cpu', log: () => {} });
after(() => loaded?.engine.shutdown(true));

/** The CPU backend given a "device" sampler: the CPU twin of kernels/sampling.cu, bitmask included. */
const sampled: SamplingRow[] = [];
let hostRows = 0;
if (loaded) {
  const runner = loaded.engine.config.runner;
  const execute = runner.execute.bind(runner);
  runner.execute = (chunks, copies): StepLogits => {
    const out = execute(chunks, copies);
    return {
      toHost: (rows) => {
        hostRows += rows.length;
        return out.toHost(rows);
      },
      sample: (rows) => {
        sampled.push(...rows);
        return Int32Array.from(rows, (r) => referenceSample(out.toHost([r.logitRow!]), r));
      },
    };
  };
}

async function text(req: GenerateRequest) {
  let out = '';
  let finish: string | null = null;
  for await (const o of loaded!.engine.generate(req)) {
    out += o.outputs[0]?.text ?? '';
    finish = o.outputs[0]?.finishReason ?? finish;
  }
  return { out, finish };
}

test('constrained rows sample on the device with their bitmask; outputs validate', { skip: fixture.skip }, async () => {
  const ajv = jsonValidator();
  const picked = SCHEMAS.filter((_, i) => i % 5 === 0);
  const results = await Promise.all(
    picked.map(({ schema }, i) =>
      text({
        prompt: 'JSON:',
        params: { temperature: 1, seed: i, maxTokens: 250 },
        grammar: { type: 'json_schema', schema },
      }),
    ),
  );
  results.forEach(({ out, finish }, i) => {
    if (finish === 'stop') assert.equal(schemaViolation(ajv, picked[i]!.schema, out), null, picked[i]!.name);
  });
  assert.ok(results.filter((r) => r.finish === 'stop').length >= picked.length - 1);
  const masked = sampled.filter((r) => r.allowedTokens);
  assert.ok(masked.length > 50, `${masked.length} masked rows sampled on the device`);
  // Host rows only where a grammar completed (its sequence ends on the host path) or for prompt logits: few.
  assert.ok(hostRows < masked.length / 5, `${hostRows} host rows`);
});
