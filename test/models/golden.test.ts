import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { GOLDEN_CASES, goldenFixture } from '../helpers/golden-cases.ts';
import { argmax, maxAbsDiff, PagedSession, topK } from '../helpers/paged-session.ts';
import { loadAsGolden } from '../helpers/patched-model.ts';

/** Agreement with transformers computing in float32 (the golden step logits are rounded to 5 decimals). */
const TOL = 1e-4;

interface GoldenPrompt {
  input_ids: number[];
  last_logits: number[];
  first_logits?: number[];
  greedy_ids: number[];
  step_top8: { ids: number[]; logits: number[] }[];
}

/**
 * Checks one generated step's logits against the golden top 8: every golden id's logit within TOL, and our top 8 in
 * the same order, except that two ids may swap places where their logits tie within TOL.
 */
function checkStep(logits: Float32Array, golden: GoldenPrompt, i: number, what: string): void {
  const want = golden.step_top8[i]!;
  const got = want.ids.map((id) => logits[id]!);
  assert.ok(maxAbsDiff(got, want.logits) < TOL, `${what}: top-8 logits at step ${i} differ: ${got} vs ${want.logits}`);
  topK(logits, 8).forEach((id, r) => {
    if (id === want.ids[r]) return;
    const tie = Math.abs(logits[id]! - want.logits[r]!) < TOL;
    assert.ok(tie, `${what}: rank ${r} at step ${i} is id ${id}, expected ${want.ids[r]} (top 8 ${want.ids})`);
  });
}

for (const { name, file, maxModelLen } of GOLDEN_CASES) {
  const fixture = goldenFixture(name);
  const skip = fixture.skip;
  const title = `golden ${name}${file === 'golden.json' ? '' : ` ${file}`}${maxModelLen ? ` (max model len ${maxModelLen})` : ''}`;
  describe(title, { skip }, () => {
    const dir = fixture.path;
    const golden = () => JSON.parse(readFileSync(join(dir, file), 'utf8')).prompts as GoldenPrompt[];
    const load = () => loadAsGolden(dir, new CpuBackend(), { maxModelLen });

    test('one prefill step gives the first and last positions logits', () => {
      const model = load();
      for (const p of golden()) {
        const rows = new PagedSession(model).step([{ seq: 0, tokens: p.input_ids, logits: 'all' }]);
        assert.equal(rows.length, p.input_ids.length);
        const last = maxAbsDiff(rows.at(-1)!, p.last_logits);
        assert.ok(last < TOL, `last logits differ by ${last}`);
        if (p.first_logits) {
          const first = maxAbsDiff(rows[0]!.subarray(0, p.first_logits.length), p.first_logits);
          assert.ok(first < TOL, `first logits differ by ${first}`);
        }
      }
    });

    test('greedy decoding one token per step through the paged cache (block size 4, shuffled blocks)', () => {
      const model = load();
      for (const p of golden()) {
        const session = new PagedSession(model, 4);
        let logits = session.step([{ seq: 0, tokens: p.input_ids }])[0]!;
        const ids: number[] = [];
        for (let i = 0; i < p.greedy_ids.length; i++) {
          if (i > 0) logits = session.step([{ seq: 0, tokens: [ids.at(-1)!] }])[0]!;
          checkStep(logits, p, i, `prompt of ${p.input_ids.length} tokens`);
          ids.push(argmax(logits));
        }
        assert.deepEqual(ids, p.greedy_ids);
      }
    });

    test('a prompt prefilled in two chunks gives the same last logits', () => {
      const model = load();
      for (const p of golden()) {
        const session = new PagedSession(model, 4);
        const cut = Math.ceil(p.input_ids.length / 2) + 1;
        assert.equal(session.step([{ seq: 0, tokens: p.input_ids.slice(0, cut), logits: 'none' }]).length, 0);
        const last = session.step([{ seq: 0, tokens: p.input_ids.slice(cut) }])[0]!;
        assert.ok(maxAbsDiff(last, p.last_logits) < TOL);
      }
    });

    test('all prompts batched: one varlen prefill step, then batched decode steps', () => {
      const model = load();
      const prompts = golden();
      const session = new PagedSession(model, 4);
      let rows = session.step(prompts.map((p, seq) => ({ seq, tokens: p.input_ids })));
      prompts.forEach((p, s) => {
        assert.ok(maxAbsDiff(rows[s]!, p.last_logits) < TOL, `prompt ${s} last logits`);
      });
      const steps = 8;
      const ids: number[][] = prompts.map(() => []);
      for (let i = 0; i < steps; i++) {
        if (i > 0) rows = session.step(prompts.map((_, seq) => ({ seq, tokens: [ids[seq]!.at(-1)!] })));
        prompts.forEach((p, s) => {
          checkStep(rows[s]!, p, i, `batched prompt ${s}`);
          ids[s]!.push(argmax(rows[s]!));
        });
      }
      prompts.forEach((p, s) => {
        assert.deepEqual(ids[s], p.greedy_ids.slice(0, steps));
      });
    });
  });
}
