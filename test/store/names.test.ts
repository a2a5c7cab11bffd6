import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHubRepoId, looksLikePath, nameProblem, parseModelName } from '../../src/store/names.ts';
import { HOSTILE_NAMES } from '../helpers/hostile-names.ts';

test('hostile names are refused with the reason', () => {
  for (const [name, reason] of HOSTILE_NAMES) {
    assert.match(nameProblem(name) ?? 'accepted', reason, JSON.stringify(name));
    assert.throws(
      () => parseModelName(name),
      (err: Error) => err.message.startsWith('invalid model name ') && reason.test(err.message),
    );
  }
});

test('ordinary names parse with a default tag', () => {
  assert.deepEqual(parseModelName('a:b'), { repo: 'a', tag: 'b' });
  assert.deepEqual(parseModelName('llama3'), { repo: 'llama3', tag: 'latest' });
  assert.deepEqual(parseModelName('my-model:v1.2'), { repo: 'my-model', tag: 'v1.2' });
  assert.deepEqual(parseModelName('Qwen/Qwen2.5-0.5B-Instruct'), { repo: 'Qwen/Qwen2.5-0.5B-Instruct', tag: 'latest' });
  assert.deepEqual(parseModelName(`${'x'.repeat(196)}:abc`), { repo: 'x'.repeat(196), tag: 'abc' });
  // Ollama's spelling of a model from another registry: the first of three parts is a host.
  assert.deepEqual(parseModelName('hf.co/org/repo:Q4_K_M'), { repo: 'hf.co/org/repo', tag: 'Q4_K_M' });
  assert.equal(isHubRepoId('hf.co/org/repo'), false);
  assert.equal(isHubRepoId('Qwen/Qwen2.5-0.5B-Instruct'), true);
  assert.equal(isHubRepoId('llama3'), false);
  assert.equal(isHubRepoId('a--b/c'), false);
});

test('paths are told apart from names', () => {
  for (const p of ['/abs', './rel', '../up', '~/home', '.', '..']) assert.equal(looksLikePath(p), true, p);
  for (const n of ['llama3', 'org/repo', 'org/repo:tag']) assert.equal(looksLikePath(n), false, n);
});
