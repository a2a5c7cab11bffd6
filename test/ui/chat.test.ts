import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { modelFixture, sharedFixture } from '../helpers/fixtures.ts';
import { findChromium, launch, openPage, screenshot } from './browser.ts';
import { startUiServer, type UiServer } from './ui-server.ts';

const chromium = findChromium();
const stories = sharedFixture('models/stories260K');
const llama = modelFixture('tiny-llama');
const needStories = chromium.skip || stories.skip;

let server: UiServer;
let browser: Browser;

before(async () => {
  if (chromium.skip) return;
  server = await startUiServer([...(stories.skip ? [] : [stories.path]), llama.path]);
  browser = await launch(chromium.path);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

interface StoredMessage {
  role: string;
  content: string;
  model?: string;
  stopped?: boolean;
  stats?: { tokens: number; perSecond: number | null; ttftMs: number | null };
}

const storedMessages = (page: Page) =>
  page.evaluate(() => {
    const list = JSON.parse(localStorage.getItem('pagoda.conversations') ?? '[]');
    const id = localStorage.getItem('pagoda.currentConversation');
    return list.find((c: { id: string }) => c.id === id).messages;
  }) as Promise<StoredMessage[]>;

/** Records the growing text of the newest answer, one entry per change the page makes. */
const watchAnswer = (page: Page) =>
  page.evaluate(() => {
    const seen: number[] = [];
    (window as unknown as { seen: number[] }).seen = seen;
    new MutationObserver(() => {
      const body = [...document.querySelectorAll('.message.assistant .body')].at(-1);
      const length = body?.textContent?.length ?? 0;
      if (length !== seen.at(-1)) seen.push(length);
    }).observe(document.querySelector('#messages')!, { subtree: true, childList: true, characterData: true });
  });

const answerDone = (page: Page) => page.locator('#send').waitFor({ state: 'visible', timeout: 30_000 });

test('chat on stories260K: the answer streams in, is the model greedy text, and shows tokens/s and TTFT', {
  skip: needStories,
}, async () => {
  const golden = JSON.parse(readFileSync(join(stories.path, 'golden.json'), 'utf8'));
  const expected = golden.prompts.find((p: { text: string }) => p.text === 'Once upon a time').greedy_text;
  const { page, errors } = await openPage(browser, `${server.url}/`);
  assert.equal(new URL(page.url()).pathname, '/ui/', 'a browser at / is sent to the page');
  await page.locator('#model').selectOption('stories260K');
  await page.locator('[data-option=temperature]').fill('0');
  await page.locator('[data-option=num_predict]').fill('64');
  await assert.doesNotReject(page.getByText('stories260K has no chat template').waitFor());
  await watchAnswer(page);
  await page.locator('#prompt').fill('Once upon a time');
  await page.locator('#prompt').press('Enter');
  await page.locator('#stop').waitFor({ state: 'visible' });
  await answerDone(page);

  const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
  // Streaming shows a part of the answer before the whole of it (how many parts depends on the machine's load).
  const whole = Math.max(...seen);
  assert.ok(
    seen.some((n) => n > 0 && n < whole),
    `the text grew in steps while streaming: ${seen}`,
  );
  const [user, answer] = await storedMessages(page);
  assert.deepEqual(user, { role: 'user', content: 'Once upon a time' });
  assert.equal(answer!.content, expected);
  assert.equal(answer!.model, 'stories260K');
  assert.equal(answer!.stats!.tokens, 64);
  const stats = await page.locator('.message.assistant .stats').textContent();
  assert.match(stats!, /^64 tokens · \d+\.\d tokens\/s · first token after \d+ ms$/);
  await screenshot(page, 'chat');

  // Conversations live in the browser's storage: a reload shows the same thread.
  await page.reload();
  await page.locator('.message.assistant').waitFor();
  assert.equal(await page.locator('.conversation-list .open').first().textContent(), 'Once upon a time');
  assert.equal((await page.locator('.message.assistant .body').textContent())!.slice(0, 20), expected.slice(0, 20));
  assert.deepEqual(errors, []);
  await page.close();
});

test('keyboard only: Tab reaches the message box, Enter sends, Esc stops the answer mid-way', {
  skip: needStories,
}, async () => {
  const { page, errors } = await openPage(browser, `${server.url}/ui/`);
  await page.locator('#model').selectOption('stories260K');
  await page.locator('[data-option=num_predict]').fill('');
  await page.locator('[data-option=temperature]').fill('0.8');
  await page.locator('[data-option=temperature]').blur();
  await page.locator('#new-chat').click();
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  for (let presses = 0; presses < 30; presses++) {
    if (await page.evaluate(() => document.activeElement?.id === 'prompt')) break;
    await page.keyboard.press('Tab');
  }
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'prompt');
  await page.keyboard.type('Once upon a time there was a dragon');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => (document.querySelector('.message.assistant .body')?.textContent?.length ?? 0) > 0);
  await page.keyboard.press('Escape');
  await answerDone(page);

  const [, answer] = await storedMessages(page);
  assert.equal(answer!.stopped, true);
  assert.ok(answer!.stats!.tokens < 400, `stopped early, after ${answer!.stats!.tokens} tokens`);
  const length = answer!.content.length;
  await page.waitForTimeout(300);
  assert.equal((await storedMessages(page))[1]!.content.length, length, 'no more text after Stop');
  assert.match((await page.locator('.message.assistant .stats').textContent())!, / · stopped$/);
  // The server saw the client go and aborted the request.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /pagoda_request_success_total\{model_name="stories260K",finished_reason="abort"\} [1-9]/);
  await screenshot(page, 'chat-stopped');
  assert.deepEqual(errors, []);
  await page.close();
});

test('switch model: the next answer comes from the chosen model through its chat template, with the settings given', {
  skip: chromium.skip,
}, async () => {
  const { page, errors } = await openPage(browser, `${server.url}/ui/`);
  await page.locator('#new-chat').click();
  await page.locator('#model').selectOption('tiny-llama');
  await page.locator('#system').fill('You are terse.');
  await page.locator('[data-option=temperature]').fill('0');
  await page.locator('[data-option=num_predict]').fill('6');
  await page.locator('[data-option=seed]').fill('7');
  await page.locator('[data-option=seed]').blur();
  const request = page.waitForRequest((r) => r.url().endsWith('/api/chat'));
  await page.locator('#prompt').fill('Hello there');
  await page.locator('#send').click();
  const body = (await request).postDataJSON();
  assert.deepEqual(body, {
    model: 'tiny-llama',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hello there' },
    ],
    options: { temperature: 0, num_predict: 6, seed: 7 },
    stream: true,
  });
  await answerDone(page);
  assert.equal(await page.locator('.message.assistant header').textContent(), 'tiny-llama');
  assert.equal(await page.locator('#model-note').textContent(), '', 'tiny-llama has a chat template');
  const first = (await storedMessages(page))[1]!;
  assert.equal(first.stats!.tokens, 6);

  // Regenerate replaces the last answer; greedy, so the same text comes back.
  const again = page.waitForRequest((r) => r.url().endsWith('/api/chat'));
  await page.getByRole('button', { name: 'Regenerate' }).click();
  await again;
  await answerDone(page);
  const messages = await storedMessages(page);
  assert.equal(messages.length, 2);
  assert.equal(messages[1]!.content, first.content);
  await screenshot(page, 'chat-switched');
  assert.deepEqual(errors, []);
  await page.close();
});

test('Markdown from a model is rendered with a fixed set of elements; HTML in it shows as text and never runs', {
  skip: chromium.skip,
}, async () => {
  const hostile = [
    '# Title',
    'Some **bold**, *italic* and `<b>code</b>`, a [link](https://example.com) and a [bad one](javascript:alert(1)).',
    '<script>window.pwned = 1</script>',
    '<img src=x onerror="window.pwned = 2">',
    '- one',
    '- two with <iframe src="https://example.com"></iframe>',
    '',
    '```js',
    'const html = "<svg onload=alert(1)>";',
    '```',
    '| a | b |',
    '|---|---|',
    '| <u>1</u> | 2 |',
  ].join('\n');
  const conversation = {
    id: 'seeded',
    title: 'Seeded',
    settings: { model: 'tiny-llama', system: '', options: {} },
    messages: [
      { role: 'user', content: 'Show me <img src=x onerror="window.pwned = 3">' },
      { role: 'assistant', content: hostile, model: 'tiny-llama' },
    ],
    updatedAt: 1,
  };
  const { page, errors } = await openPage(browser, `${server.url}/ui/`);
  // The page saves its own first conversation once its start-up requests are answered: seed after that, or the
  // seed can be overwritten before the reload (seen on a loaded machine).
  await page.waitForLoadState('networkidle');
  await page.evaluate((c) => {
    localStorage.setItem('pagoda.conversations', JSON.stringify([c]));
    localStorage.setItem('pagoda.currentConversation', c.id);
  }, conversation);
  await page.reload();
  await page.locator('.message.assistant h1').waitFor();
  const thread = page.locator('#messages');
  for (const tag of ['script', 'img', 'iframe', 'svg', 'u', 'b']) {
    assert.equal(await thread.locator(tag).count(), 0, `no <${tag}> from the text`);
  }
  assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
  const answer = page.locator('.message.assistant .body');
  const text = (await answer.textContent())!;
  for (const literal of ['<script>window.pwned = 1</script>', '<img src=x onerror="window.pwned = 2">', '<iframe']) {
    assert.ok(text.includes(literal), `shown as text: ${literal}`);
  }
  assert.ok((await page.locator('.message.user .body').textContent())!.includes('<img src=x'));
  assert.equal(await answer.locator('strong').textContent(), 'bold');
  assert.equal(await answer.locator('em').textContent(), 'italic');
  assert.equal(await answer.locator('p code').textContent(), '<b>code</b>');
  assert.equal(await answer.locator('li').count(), 2);
  assert.equal(await answer.locator('pre code.language-js').textContent(), 'const html = "<svg onload=alert(1)>";');
  assert.equal(await answer.locator('td').first().textContent(), '<u>1</u>');
  const links = await answer.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  // The markdown link and the bare URL inside the <iframe> text; never the javascript: one.
  assert.deepEqual(links, ['https://example.com/', 'https://example.com/']);
  await screenshot(page, 'chat-markdown');
  assert.deepEqual(errors, []);
  await page.close();
});
