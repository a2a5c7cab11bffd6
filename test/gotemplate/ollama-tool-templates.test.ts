import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { OllamaTemplate } from '../../src/gotemplate/ollama.ts';
import { projectRoot } from '../helpers/fixtures.ts';

const dir = join(projectRoot, 'test', 'fixtures', 'ollama-templates', 'tools');
const read = (name: string) => readFileSync(join(dir, name), 'utf8');

// Ollama's published tool templates render tools, tool calls and tool results exactly as Ollama does.
for (const model of ['qwen2.5', 'qwen3', 'llama3.2', 'mistral']) {
  test(`${model}: tools, an assistant's tool call and the tool's result render as Ollama renders them`, () => {
    const messages = JSON.parse(read('messages.json')).map((m: Record<string, unknown>) => ({
      ...m,
      content: m.content ?? '',
    }));
    const tools = JSON.parse(read('tools.json'));
    const out = new OllamaTemplate(read(`${model}.gotmpl`)).render(messages, { tools });
    assert.equal(out, read(`${model}.out`));
  });
}
