import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.ts';
import { loadChatTemplate } from '../../src/loader/chat-template.ts';
import { convertToGguf } from '../../src/loader/gguf/convert.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { loadModel } from '../../src/models/load.ts';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { GGUF_FIXTURES } from '../helpers/golden-cases.ts';
import { argmax, maxAbsDiff, PagedSession } from '../helpers/paged-session.ts';

interface GoldenPrompt {
  text: string;
  input_ids: number[];
  last_logits: number[];
  greedy_ids: number[];
}

interface Golden {
  prompts: GoldenPrompt[];
  chat?: { messages: { role: string; content: string }[]; rendered: string; input_ids: number[] };
}

const golden = (dir: string): Golden => JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));

/** Greedy ids and last-prompt logits of a model against transformers' golden.json (float32, 1e-4). */
function checkGolden(path: string, goldenDir: string): void {
  const model = loadModel(path, new CpuBackend());
  for (const p of golden(goldenDir).prompts) {
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

const out = mkdtempSync(join(tmpdir(), 'pagoda-convert-'));

for (const name of GGUF_FIXTURES) {
  const fixture = modelFixture(name);
  describe(`${name} converted to an F32 GGUF`, { skip: fixture.skip }, () => {
    const path = join(out, `${name}.gguf`);
    test('gives the golden greedy ids and last logits', () => {
      convertToGguf(fixture.path, path, 'f32');
      checkGolden(path, fixture.path);
    });

    test("its tokenizer gives the Hugging Face tokenizer's ids, and its chat template renders the same", () => {
      const g = golden(fixture.path);
      const tok = loadTokenizer(path);
      for (const p of g.prompts) assert.deepEqual(tok.encode(p.text), p.input_ids, p.text);
      const hf = loadTokenizer(fixture.path);
      assert.equal(tok.vocabSize, hf.vocabSize);
      assert.equal(tok.bosTokenId, hf.bosTokenId);
      const text = 'Hello, world! 123456 naïve  spaces\n\ttabs 🦙 <|im_start|>';
      assert.deepEqual(tok.encode(text), hf.encode(text));
      assert.equal(
        tok.decode(hf.encode(text, { addSpecialTokens: false })),
        hf.decode(hf.encode(text, { addSpecialTokens: false })),
      );
      if (g.chat) {
        const template = loadChatTemplate(path);
        assert.ok(template, 'the chat template is inside the file');
        const rendered = template.render(g.chat.messages, { addGenerationPrompt: true });
        assert.equal(rendered, g.chat.rendered);
        assert.deepEqual(tok.encode(rendered, { addSpecialTokens: false }), g.chat.input_ids);
      }
    });
  });
}
