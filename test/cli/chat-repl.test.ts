import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { ChatDelta } from '../../src/cli/chat/answer-printer.ts';
import { type ChatBackend, type ChatTurn, chatRepl } from '../../src/cli/chat/repl.ts';

/** A backend that thinks, then answers, and keeps the conversations it was sent. */
function thinkingBackend(seen: ChatTurn[][]): ChatBackend {
  return {
    hasTemplate: true,
    thinks: true,
    model: 'thinker',
    async *stream(messages): AsyncIterable<ChatDelta> {
      seen.push(messages.map((m) => ({ ...m })));
      yield { thinking: 'Let me see.' };
      yield `answer ${seen.length}`;
    },
  };
}

test('the chat shows the thinking apart and keeps it with the answer for the next turn, as Ollama does', async () => {
  const seen: ChatTurn[][] = [];
  const input = new PassThrough();
  const output = new PassThrough();
  let shown = '';
  output.on('data', (c) => (shown += String(c)));
  const done = chatRepl(thinkingBackend(seen), { params: {}, raw: false }, { input, output });
  input.write('first\n');
  await new Promise((r) => setTimeout(r, 50));
  input.write('second\n');
  await new Promise((r) => setTimeout(r, 50));
  input.end();
  await done;
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[1], [
    { role: 'user', content: 'first' },
    { role: 'assistant', content: 'answer 1', thinking: 'Let me see.' },
    { role: 'user', content: 'second' },
  ]);
  assert.match(shown, /Thinking\.\.\.\nLet me see\.\n\.\.\.done thinking\.\n\nanswer 1/);
});
