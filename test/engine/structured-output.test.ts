import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import type { GenerateRequest, RequestOutput } from '../../src/engine/types.ts';
import type { GrammarSpec } from '../../src/grammar/spec.ts';
import { UserError } from '../../src/util/errors.ts';
import { SCHEMAS } from '../grammar/schemas.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { jsonValidator, schemaViolation } from '../helpers/json-validator.ts';

async function complete(e: LoadedEngine, req: GenerateRequest) {
  let text = '';
  let last: RequestOutput | null = null;
  for await (const out of e.engine.generate(req)) {
    text += out.outputs[0]?.text ?? '';
    last = out;
  }
  return { text, finish: last!.outputs[0]!.finishReason, tokens: last!.metrics.generationTokens };
}

// Random weights at temperature 1.0 fuzz the grammar: whatever the model draws, the output must match.
for (const name of ['tiny-qwen2', 'tiny-llama']) {
  const fixture = modelFixture(name);
  describe(`structured output through the engine (${name}, CPU)`, { skip: fixture.skip }, () => {
    const loaded = fixture.skip ? null : loadEngine(fixture.path, { device: 'cpu', log: () => {} });
    after(() => loaded?.engine.shutdown(true));

    test('50 schemas x 3 seeds at temperature 1.0: every stop parses and validates, >= 95% stop', async () => {
      const ajv = jsonValidator();
      const runs = SCHEMAS.flatMap(({ name: schemaName, schema }, i) =>
        [0, 1, 2].map(async (seed) => {
          const grammar: GrammarSpec = { type: 'json_schema', schema };
          const params = { temperature: 1, seed: i * 10 + seed, maxTokens: 250 };
          const r = await complete(loaded!, { prompt: 'Answer in JSON:', params, grammar });
          if (r.finish === 'stop') assert.equal(schemaViolation(ajv, schema, r.text), null, `${schemaName}/${seed}`);
          else assert.equal(r.finish, 'length');
          return r.finish;
        }),
      );
      const finishes = await Promise.all(runs);
      const stopped = finishes.filter((f) => f === 'stop').length;
      assert.ok(stopped >= 0.95 * finishes.length, `${stopped} of ${finishes.length} stopped`);
    });

    test('max_tokens cuts a constrained output with finish_reason length', async () => {
      const grammar: GrammarSpec = {
        type: 'json_schema',
        schema: SCHEMAS.find((s) => s.name === 'twenty properties')!.schema,
      };
      const r = await complete(loaded!, { prompt: 'x', params: { temperature: 1, seed: 3, maxTokens: 5 }, grammar });
      assert.equal(r.finish, 'length');
      assert.equal(r.tokens, 5);
    });

    test('regex, choice and json_object with n = 2', async () => {
      const re = await complete(loaded!, {
        prompt: 'Code:',
        params: { temperature: 1, seed: 1, maxTokens: 40 },
        grammar: { type: 'regex', pattern: '[A-Z]{3}-[0-9]{2}' },
      });
      assert.match(re.text, /^[A-Z]{3}-[0-9]{2}$/);
      assert.equal(re.finish, 'stop');
      const choices = ['yes', 'no'];
      const outs: string[] = ['', ''];
      for await (const out of loaded!.engine.generate({
        prompt: 'Well?',
        params: { temperature: 1, seed: 2, n: 2, maxTokens: 10 },
        grammar: { type: 'choice', choices },
      })) {
        for (const o of out.outputs) outs[o.index] += o.text;
      }
      for (const o of outs) assert.ok(choices.includes(o), o);
      const obj = await complete(loaded!, {
        prompt: '{',
        params: { temperature: 1, seed: 4, maxTokens: 300 },
        grammar: { type: 'json_object' },
      });
      if (obj.finish === 'stop') assert.equal(typeof JSON.parse(obj.text), 'object');
    });

    test('a schema that takes long to compile stalls neither constrained nor unconstrained requests', async () => {
      const slow = {
        type: 'object',
        properties: Object.fromEntries(
          Array.from({ length: 1200 }, (_, i) => [
            `p${i}`,
            { type: 'string', pattern: `^[a-z]{${(i % 7) + 1},${(i % 11) + 9}}$` },
          ]),
        ),
      };
      const events: string[] = [];
      const stream = loaded!.engine.generate({
        prompt: 'Letters:',
        params: { temperature: 1, seed: 9, maxTokens: 40 },
        grammar: { type: 'regex', pattern: '[a-z]{40}' },
      });
      const first = await stream.next();
      assert.equal(first.done, false);
      const constrained = (async () => {
        for await (const _ of stream);
        events.push('constrained done');
      })();
      const heavy = complete(loaded!, {
        prompt: 'x',
        params: { maxTokens: 1 },
        grammar: { type: 'json_schema', schema: slow },
      }).then(() => events.push('slow compile done'));
      const plain = complete(loaded!, { prompt: 'y', params: { maxTokens: 30, ignoreEos: true } }).then(() =>
        events.push('plain done'),
      );
      await Promise.all([constrained, heavy, plain]);
      assert.equal(events.at(-1), 'slow compile done', events.join(', '));
    });

    test('an invalid schema is refused before the request queues; beam search is refused', async () => {
      await assert.rejects(
        complete(loaded!, { prompt: 'x', grammar: { type: 'json_schema', schema: { type: 'nope' } } }),
        (e: Error) => e instanceof UserError && /invalid JSON schema: Unsupported type "nope"/.test(e.message),
      );
      await assert.rejects(
        complete(loaded!, {
          prompt: 'x',
          params: { useBeamSearch: true, bestOf: 2, n: 2 },
          grammar: { type: 'json_object' },
        }),
        /beam search/,
      );
      assert.equal(loaded!.engine.stats().running, 0);
    });
  });
}
