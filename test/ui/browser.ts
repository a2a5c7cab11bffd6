import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { projectRoot } from '../helpers/fixtures.ts';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/**
 * The Chromium the page tests drive: PAGODA_CHROMIUM, else Debian's. A developer without one gets the tests
 * skipped with this message; CI (CI set, and .ci/run installs chromium) fails instead, so it always runs them.
 */
export function findChromium(): { path: string; skip: false } | { path: ''; skip: string } {
  const path = [process.env.PAGODA_CHROMIUM, ...CANDIDATES].find((p) => p && existsSync(p));
  if (path) return { path, skip: false };
  if (process.env.CI) throw new Error('CI is set but no chromium was found: .ci/run should have installed it');
  return { path: '', skip: 'no chromium found (apt-get install chromium, or set PAGODA_CHROMIUM to a Chromium)' };
}

/** Headless Chromium as it runs here and in CI (Playwright gives each launch a fresh profile folder). */
export function launch(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Where screenshots go (git-ignored): test-output/ui/<name>.png. */
export const SCREENSHOTS = join(projectRoot, 'test-output', 'ui');

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** A new page at a desktop size that fails the test on any script error or console error of its own. */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => {
    // A refused request (401 while the key is missing) is logged by the browser itself; it is expected there.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
  });
  await page.goto(url);
  return { page, errors };
}
