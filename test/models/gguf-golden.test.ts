import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadModel } from '../../src/models/load.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { argmax, maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';

interface GoldenPrompt {
  input_ids: number[];
  last_logits: number[];
  greedy_ids: number[];
}

/** Greedy ids and last-prompt logits of a model against transformers' golden.json (float32, 1e-4). */
function checkGolden(path: string, goldenDir: string): void {
  const model = loadModel(path, new CpuBackend());
  const prompts = JSON.parse(readFileSync(join(goldenDir, 'golden.json'), 'utf8')).prompts as GoldenPrompt[];
  for (const p of prompts) {
    const session = new PagedSession(model, 4);
    let logits = session.step([{ seq: 0, tokens: p.input_ids }])[0]!;
    const diff = maxAbsDiff(logits, p.last_logits);
    assert.ok(diff < 1e-4, `${path}: last logits differ by ${diff}`);
    const ids: number[] = [];
    for (let i = 0; i < p.greedy_ids.length; i++) {
      if (i > 0) logits = session.step([{ seq: 0, tokens: [ids.at(-1)!] }])[0]!;
      ids.push(argmax(logits));
    }
    assert.deepEqual(ids, p.greedy_ids);
  }
}

const stories = sharedFixture('gguf/stories260K.gguf');
const storiesGolden = modelFixture('stories260K');
test(
  "stories260K.gguf (llama.cpp's own file, Q/K in its RoPE row order) gives the safetensors golden",
  { skip: stories.skip || storiesGolden.skip },
  () => checkGolden(stories.path, storiesGolden.path),
);
