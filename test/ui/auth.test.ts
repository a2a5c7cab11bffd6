import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { modelFixture } from '../helpers/fixtures.ts';
import { findChromium, launch, openPage, screenshot } from './browser.ts';
import { startUiServer, type UiServer } from './ui-server.ts';

const chromium = findChromium();
const KEY = 'sekrit-key';

let server: UiServer;
let browser: Browser;

before(async () => {
  if (chromium.skip) return;
  // Behind a key and with CORS origins configured: the page is same-origin, so --origins must not get in its way.
  server = await startUiServer([modelFixture('tiny-llama').path], {
    apiKey: KEY,
    origins: ['https://elsewhere.example'],
  });
  browser = await launch(chromium.path);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('behind --api-key: the page loads, the API refuses it until the key is given, then every call sends it', {
  skip: chromium.skip,
}, async () => {
  const { page, errors } = await openPage(browser, `${server.url}/`);
  const dialog = page.getByRole('dialog', { name: 'API key required' });
  await dialog.waitFor();
  assert.match((await dialog.textContent())!, /missing API key/);
  await screenshot(page, 'auth');

  // Declined: nothing is shown, and the page does not ask again by itself.
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await page.getByText('missing API key', { exact: false }).first().waitFor();
  assert.equal(await page.locator('#model option').count(), 0);
  await page.waitForTimeout(300);
  assert.equal(await dialog.count(), 0);

  // A wrong key is refused in the server's words; the right one is kept for the tab and sent on every call.
  const authorizations = new Set<string>();
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/')) authorizations.add(r.headers().authorization ?? 'none');
  });
  await page.getByRole('button', { name: 'API key' }).click();
  await dialog.getByLabel('API key').fill('wrong');
  await dialog.getByLabel('API key').press('Enter');
  await page.getByText('invalid API key', { exact: false }).first().waitFor();
  await dialog.getByLabel('API key').fill(KEY);
  await dialog.getByRole('button', { name: 'Use key' }).click();
  await page.locator('#model option[value="tiny-llama"]').waitFor({ state: 'attached' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('pagoda.apiKey')), KEY);

  await page.locator('[data-option=num_predict]').fill('4');
  await page.locator('#prompt').fill('Hi');
  await page.locator('#prompt').press('Enter');
  await page.locator('.message.assistant .stats').filter({ hasText: 'tokens' }).waitFor();
  await page.goto(`${server.url}/ui/#models`);
  await page.locator('#model-table tr[data-model="tiny-llama"]').waitFor();
  assert.ok(authorizations.has(`Bearer ${KEY}`));
  assert.deepEqual(
    [...authorizations].filter((a) => a !== `Bearer ${KEY}`),
    ['Bearer wrong'],
    'every call after the refusal carried a key',
  );
  assert.deepEqual(errors, []);
  await page.close();
});

test('a new tab asks again: the key is kept per tab, not stored for the site', { skip: chromium.skip }, async () => {
  const { page } = await openPage(browser, `${server.url}/ui/#models`);
  await page.getByRole('dialog', { name: 'API key required' }).waitFor();
  await page.close();
});
