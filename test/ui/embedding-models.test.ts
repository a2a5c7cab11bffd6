import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { modelFixture } from '../helpers/fixtures.ts';
import { findChromium, launch, openPage, screenshot } from './browser.ts';
import { startUiServer, type UiServer } from './ui-server.ts';

const chromium = findChromium();
const bert = modelFixture('tiny-bert');
const llama = modelFixture('tiny-llama');
const skip = chromium.skip || bert.skip || llama.skip;

let server: UiServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  // The embedding model first: a picker that offered every model would choose it.
  server = await startUiServer([bert.path, llama.path]);
  browser = await launch(chromium.path);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const pickerOptions = (page: Page) => page.locator('#model option').allTextContents();

test('the chat picker offers only models that generate text, and never chooses an embedding model', {
  skip,
}, async () => {
  const { page, errors } = await openPage(browser, `${server.url}/ui/`);
  await page.locator('#model option').first().waitFor({ state: 'attached' });
  assert.deepEqual(await pickerOptions(page), ['tiny-llama']);
  assert.equal(await page.locator('#model').inputValue(), 'tiny-llama');
  assert.equal(await page.locator('#model-note').textContent(), '');

  // A conversation kept from before, on the embedding model: it opens on a model that can chat.
  await page.waitForLoadState('networkidle');
  await page.evaluate(() => {
    const c = { id: 'kept', title: 'Kept', settings: { model: 'tiny-bert', system: '', options: {} }, messages: [] };
    localStorage.setItem('pagoda.conversations', JSON.stringify([c]));
    localStorage.setItem('pagoda.currentConversation', c.id);
  });
  await page.reload();
  await page.locator('#model option').first().waitFor({ state: 'attached' });
  assert.deepEqual(await pickerOptions(page), ['tiny-llama']);
  assert.equal(await page.locator('#model').inputValue(), 'tiny-llama');
  const sent = page.waitForRequest((r) => r.url().endsWith('/api/chat'));
  await page.locator('[data-option=num_predict]').fill('3');
  await page.locator('#prompt').fill('Hello');
  await page.locator('#prompt').press('Enter');
  assert.equal((await sent).postDataJSON().model, 'tiny-llama');
  await page.locator('#send').waitFor({ state: 'visible' });
  assert.equal(await page.locator('.message.assistant header').textContent(), 'tiny-llama');
  await screenshot(page, 'chat-beside-embedding-model');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the models page offers Chat only on models that generate text', { skip }, async () => {
  const { page, errors } = await openPage(browser, `${server.url}/ui/#models`);
  const row = (name: string) => page.locator(`#model-table tr[data-model="${name}"]`);
  await row('tiny-bert').waitFor();
  await row('tiny-llama').waitFor();
  assert.equal(await row('tiny-llama').getByRole('button', { name: 'Chat tiny-llama' }).count(), 1);
  assert.equal(await row('tiny-bert').getByRole('button', { name: 'Chat tiny-bert' }).count(), 0);
  assert.equal(await row('tiny-bert').getByRole('button', { name: 'Copy tiny-bert' }).count(), 1, 'its other actions');
  await screenshot(page, 'models-embedding');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the KV cache chart leaves out embedding models (they have no KV cache)', { skip }, async () => {
  const { page, errors } = await openPage(browser, `${server.url}/ui/#metrics`);
  const legend = page.locator('#chart-kv .legend');
  await legend.first().waitFor();
  assert.deepEqual(await legend.allTextContents(), ['tiny-llama 0%']);
  // The page still tells of the embedding model elsewhere: it is one of the models to pick.
  assert.ok((await page.locator('#metrics-model option').allTextContents()).includes('tiny-bert'));
  assert.deepEqual(errors, []);
  await page.close();
});

test('with only an embedding model, the chat page says no model can chat and sends nothing', { skip }, async () => {
  const only = await startUiServer([bert.path]);
  try {
    const { page, errors } = await openPage(browser, `${only.url}/ui/`);
    await page.getByText('No model here can chat').waitFor();
    assert.deepEqual(await pickerOptions(page), []);
    const generating: string[] = [];
    page.on('request', (r) => {
      if (/\/api\/(chat|generate)$/.test(r.url())) generating.push(r.url());
    });
    await page.locator('#prompt').fill('Hello');
    await page.locator('#prompt').press('Enter');
    await page.waitForTimeout(300);
    assert.deepEqual(generating, []);
    assert.equal(await page.locator('#prompt').inputValue(), 'Hello', 'the message stays to send later');
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await only.stop();
  }
});
