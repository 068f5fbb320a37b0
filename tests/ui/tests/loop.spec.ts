/**
 * A service's retraining loop in a real JupyterLab, on `loop/` as seeded by
 * tests/ui/seed_loop.py: the `churn` service whose challenger 2 a retraining released as
 * a canary and the gate promoted, and the loop's events that tell it (the watcher, a
 * drift trigger, the retraining with the gate's two checks, the promotion). The Services
 * panel's Loop section shows whether `ship watch` runs, the events newest first, and the
 * retraining's decision and checks, within the default sidebar width.
 * Screenshots: loop-sidebar-{light,dark}.png (the sidebar at the Loop section),
 * loop-panel.png (the whole window).
 */
import * as fs from 'fs';
import * as path from 'path';

import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { contrastOf, overflowOf } from './measure';

const SHOTS = path.resolve(__dirname, '..', 'screenshots');
const SERVICES = '#jp-ship-services';
const LOOP = `${SERVICES} .jp-ship-service[data-service="churn"] .jp-ship-loop`;

interface IApp {
  commands: { execute(id: string, args?: unknown): Promise<unknown> };
}

/** Open `loop/churn.ipynb` and the Ship sidebar with only the Services section open. */
async function openServices(page: IJupyterLabPageFixture, width = 380): Promise<void> {
  await page.evaluate(async () => {
    const app = (window as unknown as { jupyterapp: IApp }).jupyterapp;
    await app.commands.execute('docmanager:open', { path: 'loop/churn.ipynb' });
  });
  await page.notebook.activate('churn.ipynb');
  await page.sidebar.openTab('jp-ship-sidebar');
  await page.sidebar.setWidth(width);
  const title = page.locator('#jp-ship-sidebar .jp-AccordionPanel-title', { hasText: 'Services' });
  if ((await title.getAttribute('aria-expanded')) !== 'true') {
    await title.click();
  }
  await expect(page.locator(LOOP)).toBeVisible({ timeout: 60_000 });
}

/** Scroll to `selector`, again if the panel's 10 s re-read replaced it meanwhile. */
async function scrollTo(page: IJupyterLabPageFixture, selector: string): Promise<void> {
  await expect(async () => {
    await page.locator(selector).scrollIntoViewIfNeeded({ timeout: 2000 });
  }).toPass({ timeout: 15000 });
}

test.describe('The retraining loop', () => {
  test('the Services panel shows the loop’s events, the retraining’s decision and its checks', async ({ page }) => {
    await openServices(page);
    const loop = page.locator(LOOP);

    // The watcher: it stopped, so the section says how to start it.
    await expect(loop).toHaveAttribute('data-watcher', 'stopped');
    await expect(loop.locator('.jp-ship-loop-state')).toHaveText('not watched');
    await expect(loop.locator('.jp-ship-loop-watcher')).toContainText('start it in a terminal with “ship watch churn”');
    await expect(loop.locator('.jp-ship-loop-last')).toContainText('Last retrained');

    // The events, newest first: the gate's promotion, the retraining, its trigger, the watcher.
    const events = loop.locator('.jp-ship-loop-event');
    await expect(events).toHaveCount(4);
    expect(await events.evaluateAll(nodes => nodes.map(n => (n as HTMLElement).dataset.kind))).toEqual([
      'release',
      'retrain',
      'trigger',
      'watch'
    ]);
    for (const i of [0, 1, 2, 3]) {
      await expect(events.nth(i).locator('.jp-ship-loop-time')).toHaveText(/\d\d:\d\d/);
      await expect(events.nth(i).locator('.jp-ship-loop-kind')).not.toBeEmpty();
    }
    await expect(events.nth(0).locator('.jp-ship-loop-title')).toHaveText('Promoted v2 to champion (automatic)');
    await expect(events.nth(0).locator('.jp-ship-loop-message')).toContainText('within their thresholds');
    await expect(events.nth(2).locator('.jp-ship-loop-title')).toHaveText('Triggered by dataset drift');
    await expect(events.nth(2).locator('.jp-ship-loop-message')).toContainText('2 of 3 features drift');
    await expect(events.nth(3).locator('.jp-ship-loop-title')).toHaveText('Watcher started');

    // The retraining: its decision, facts, and the gate's two checks.
    const retrain = events.nth(1);
    await expect(retrain).toHaveAttribute('data-decision', 'canary');
    await expect(retrain.locator('.jp-ship-loop-kind')).toHaveText('retrain');
    await expect(retrain.locator('.jp-ship-loop-title')).toHaveText('Challenger v2 released as a canary');
    await expect(retrain.locator('.jp-ship-loop-facts')).toContainText('champion v1 → challenger v2');
    await expect(retrain.locator('.jp-ship-loop-facts')).toContainText('800 labelled production rows: 560 trained on, 240 held out');
    await expect(retrain.locator('.jp-ship-loop-facts')).toContainText('canary v2 at 10 %');
    const checks = retrain.locator('.jp-ship-retrain-checks');
    await expect(checks.locator('th')).toHaveText(['Check', 'Champion', 'Challenger', 'Interval', 'Verdict']);
    const recent = checks.locator('tr.jp-ship-check[data-check="recent"]');
    await expect(recent.locator('td')).toHaveText(['recentaccuracy', '71.2 %', '84.6 %', '[+8.1, +19] pp', 'passed']);
    await expect(recent.locator('+ tr.jp-ship-check-detail')).toContainText('240 rows · better on 240 recent rows');
    const holdout = checks.locator('tr.jp-ship-check[data-check="holdout"]');
    await expect(holdout.locator('td')).toHaveText(['holdoutaccuracy', '90.5 %', '90 %', '[−1.3, +0.4] pp', 'passed']);
    await expect(holdout.locator('+ tr.jp-ship-check-detail')).toContainText('200 rows · not worse on 200 holdout rows');
    await expect(checks.locator('.jp-ship-check-state.jp-ship-mod-passed')).toHaveCount(2);

    // Nothing wider than the sidebar; the verdicts readable in both themes.
    const sidebar = page.locator('#jp-ship-sidebar');
    for (const theme of ['light', 'dark']) {
      if (theme === 'dark') {
        await page.theme.setDarkTheme();
        await expect(page.locator(LOOP)).toBeVisible();
      }
      expect(await overflowOf(page, SERVICES)).toBeLessThanOrEqual(1);
      const verdict = `${LOOP} .jp-ship-retrain-checks .jp-ship-check-state.jp-ship-mod-passed`;
      const ratio = await contrastOf(page, verdict, verdict);
      test.info().annotations.push({ type: `loop-contrast-${theme}`, description: ratio.toFixed(2) });
      expect(ratio, `${theme} verdict`).toBeGreaterThanOrEqual(4.5);
      await scrollTo(page, LOOP);
      fs.mkdirSync(SHOTS, { recursive: true });
      await sidebar.screenshot({ path: path.join(SHOTS, `loop-sidebar-${theme}.png`) });
      if (theme === 'light') {
        await page.screenshot({ path: path.join(SHOTS, 'loop-panel.png') });
      }
    }
    await page.theme.setLightTheme();
  });
});
