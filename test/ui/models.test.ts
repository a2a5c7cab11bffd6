import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { FakeHub } from '../helpers/fake-hub.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { readModelFolder } from '../helpers/hf-cache.ts';
import { findChromium, launch, openPage, screenshot } from './browser.ts';
import { startUiServer, type UiServer } from './ui-server.ts';

const chromium = findChromium();
const llama = modelFixture('tiny-llama');
const qwen = modelFixture('tiny-qwen2');

let server: UiServer;
let browser: Browser;
let page: Page;
let errors: string[];
const hub = new FakeHub();

before(async () => {
  if (chromium.skip) return;
  await hub.start();
  hub.repos.set('acme/tiny-qwen2', { commit: 'c'.repeat(40), files: readModelFolder(qwen.path) });
  server = await startUiServer([llama.path], {}, hub.endpoint);
  browser = await launch(chromium.path);
  ({ page, errors } = await openPage(browser, `${server.url}/ui/#models`));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await hub.stop();
});

const row = (name: string) => page.locator(`#model-table tr[data-model="${name}"]`);
const cells = async (name: string) => (await row(name).locator('th, td').allTextContents()).slice(0, 9);

test('the models page shows what list and ps show; unload frees a loaded model', { skip: chromium.skip }, async () => {
  await row('tiny-llama').waitFor();
  const [name, family, parameters, quantization, size, loaded, memory, context, unloads] = await cells('tiny-llama');
  assert.deepEqual([name, family, quantization, loaded], ['tiny-llama', 'llama', 'F32', 'CPU']);
  assert.match(parameters!, /^\d+(\.\d)?K$/);
  assert.match(size!, /^\d+ KiB$/);
  assert.match(memory!, /^\d+(\.\d)? (KiB|MiB)$/);
  assert.equal(context, '512');
  assert.equal(unloads, 'never', 'a --model model is pinned');

  await row('tiny-llama').getByRole('button', { name: 'Unload tiny-llama' }).click();
  await page.getByText('tiny-llama unloaded.').waitFor();
  // The table is read again after the message: its row may say so a moment later.
  await page.waitForFunction(
    () => document.querySelectorAll('#model-table tr[data-model="tiny-llama"] :is(th, td)')[5]?.textContent === 'no',
  );
  assert.equal((await cells('tiny-llama'))[5], 'no');
  assert.deepEqual(((await (await fetch(`${server.url}/api/ps`)).json()) as { models: unknown[] }).models, []);
  assert.equal(await row('tiny-llama').getByRole('button', { name: 'Unload tiny-llama' }).count(), 0);
});

test('pull from the (fake) Hub: progress per file reaches 100%, then the model is listed', {
  skip: chromium.skip,
}, async () => {
  // Every value the bar shows, as the page sets them.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { seen: string[] }).seen = seen;
    const percent = document.querySelector('#pull-percent')!;
    new MutationObserver(() => seen.push(percent.textContent ?? '')).observe(percent, { childList: true });
  });
  await page.locator('#pull-name').fill('acme/tiny-qwen2');
  await page.getByRole('button', { name: 'Pull' }).click();
  await page.getByText('Pulled acme/tiny-qwen2.').waitFor();
  assert.equal(await page.locator('#pull-percent').textContent(), '100%');
  assert.equal(await page.locator('#pull-bar').evaluate((bar: HTMLProgressElement) => bar.value), 100);
  const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
  assert.equal(seen.at(-1), '100%', seen.join(' '));
  const files = await page.locator('#pull-files li').allTextContents();
  for (const file of ['config.json', 'tokenizer.json', 'model.safetensors']) {
    const line = files.find((f) => f.startsWith(`${file}: `));
    assert.ok(line, `${file} in ${files}`);
    const [done, total] = line.slice(file.length + 2).split(' of ');
    assert.equal(done, total, line);
  }
  await row('acme/tiny-qwen2:latest').waitFor();
  const [, family, , quantization, , loaded] = await cells('acme/tiny-qwen2:latest');
  assert.deepEqual([family, quantization, loaded], ['qwen2', 'BF16', 'no']);

  // Loaded on demand, it shows when its keep-alive runs out.
  const body = {
    model: 'acme/tiny-qwen2',
    prompt: 'Hi',
    stream: false,
    keep_alive: '10m',
    options: { num_predict: 1 },
  };
  assert.equal((await fetch(`${server.url}/api/generate`, { method: 'POST', body: JSON.stringify(body) })).status, 200);
  await page.reload();
  await row('acme/tiny-qwen2:latest').locator('td.loaded', { hasText: 'CPU' }).waitFor();
  const unloads = (await cells('acme/tiny-qwen2:latest'))[8]!;
  // A time of day, with the date in front when the deadline falls after midnight.
  assert.match(unloads, /\d{1,2}:\d\d:\d\d/, `the keep-alive deadline: ${unloads}`);
  await screenshot(page, 'models-pull');
});

test('create from a Modelfile, copy, and delete with a confirmation', { skip: chromium.skip }, async () => {
  await page.locator('#create-name').fill('terse');
  await page.locator('#create-modelfile').fill('FROM acme/tiny-qwen2\nPARAMETER warmth 1');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByText('modelfile:2: unknown parameter "warmth"', { exact: false }).waitFor();
  // The browser logs the refused request; that one is expected.
  assert.deepEqual(
    errors.splice(0).map((e) => /status of (\d+)/.exec(e)?.[1]),
    ['400'],
  );

  await page.locator('#create-modelfile').fill('FROM acme/tiny-qwen2\nPARAMETER temperature 0\nSYSTEM """Be terse."""');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByText('Created terse.').waitFor();
  await row('terse:latest').waitFor();
  const show = (await (
    await fetch(`${server.url}/api/show`, { method: 'POST', body: JSON.stringify({ model: 'terse' }) })
  ).json()) as { system: string; parameters: string };
  assert.equal(show.system, 'Be terse.');
  assert.equal(show.parameters, 'temperature 0');

  await row('terse:latest').getByRole('button', { name: 'Copy terse:latest' }).click();
  const copy = page.getByRole('dialog', { name: 'Copy terse:latest' });
  await copy.getByLabel('New name').fill('terse-2');
  await copy.getByLabel('New name').press('Enter');
  await row('terse-2:latest').waitFor();

  await row('terse-2:latest').getByRole('button', { name: 'Delete terse-2:latest' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete terse-2:latest?' });
  await confirm.waitFor();
  await screenshot(page, 'models-delete');
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'detached' });
  assert.equal(await row('terse-2:latest').count(), 1, 'Cancel keeps the model');

  await row('terse-2:latest').getByRole('button', { name: 'Delete terse-2:latest' }).click();
  await page.getByRole('dialog', { name: 'Delete terse-2:latest?' }).getByRole('button', { name: 'Delete' }).click();
  await page.getByText('Deleted terse-2:latest.').waitFor();
  await row('terse-2:latest').waitFor({ state: 'detached' });
  assert.equal(await row('terse:latest').count(), 1);
  await screenshot(page, 'models');
});

test('metrics: the charts follow the server under load', { skip: chromium.skip }, async () => {
  await page.goto(`${server.url}/ui/#metrics`);
  await page.locator('#chart-tokens[data-latest]').waitFor({ state: 'attached' });
  const ttftBefore = Number((await page.locator('#chart-ttft').getAttribute('data-total')) ?? 0);
  const load = Array.from({ length: 4 }, (_, k) =>
    fetch(`${server.url}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'tiny-llama',
        prompt: `Request ${k}`,
        stream: false,
        options: { num_predict: 120, temperature: 0.8, seed: k },
      }),
    }).then((r) => r.json()),
  );
  const tokensPerSecond = () =>
    page.locator('#chart-tokens').evaluate((f: HTMLElement) => JSON.parse(f.dataset.latest ?? '[0]')[0] as number);
  await page.waitForFunction(
    () => JSON.parse(document.querySelector<HTMLElement>('#chart-tokens')!.dataset.latest!)[0] > 0,
    null,
    { timeout: 15_000 },
  );
  assert.ok((await tokensPerSecond()) > 0);
  await Promise.all(load);
  await page.waitForFunction(
    (before) => Number(document.querySelector<HTMLElement>('#chart-ttft')!.dataset.total) >= before + 4,
    ttftBefore,
  );
  assert.ok(Number(await page.locator('#chart-itl').getAttribute('data-total')) > 0);
  assert.match((await page.locator('#chart-tokens svg polyline').getAttribute('points'))!, /\d+\.\d,\d+\.\d/);
  await screenshot(page, 'metrics');
  assert.deepEqual(errors, []);
});
