/**
 * A service's release in a real JupyterLab, on `release/` as seeded by
 * tests/ui/seed_release.py: the `churn` service with champion 1, canary 2 at 25 % and
 * shadow 3, the decisions that led there, and 90 minutes of traffic scored by each
 * version. The Services panel shows the release (split, the canary's checks, the
 * shadow's report, the decisions); the service opens as a page with traffic, latency
 * and errors per version; the buttons change the release through their dialogs.
 * Screenshots: release-panel-{light,dark}.png, the sidebar alone at the top of the release
 * and at its decisions (release-sidebar-{light,dark}.png,
 * release-sidebar-decisions-{light,dark}.png), service-page-{light,dark}.png,
 * release-rolled-back.png, release-canary-dialog.png.
 */
import * as fs from 'fs';
import * as path from 'path';

import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { contrastOf, overflowOf } from './measure';

const SHOTS = path.resolve(__dirname, '..', 'screenshots');
const SERVICES = '#jp-ship-services';
const SERVICE = `${SERVICES} .jp-ship-service[data-service="churn"]`;
const RELEASE = `${SERVICE} .jp-ship-release`;

interface IApp {
  commands: { execute(id: string, args?: unknown): Promise<unknown> };
}

async function shoot(page: IJupyterLabPageFixture, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Open `release/churn.ipynb` and the Ship sidebar with only the Services section open. */
async function openServices(page: IJupyterLabPageFixture, width = 380): Promise<void> {
  await page.evaluate(async () => {
    const app = (window as unknown as { jupyterapp: IApp }).jupyterapp;
    await app.commands.execute('docmanager:open', { path: 'release/churn.ipynb' });
  });
  await page.notebook.activate('churn.ipynb');
  await page.sidebar.openTab('jp-ship-sidebar');
  await page.sidebar.setWidth(width);
  const title = page.locator('#jp-ship-sidebar .jp-AccordionPanel-title', { hasText: 'Services' });
  if ((await title.getAttribute('aria-expanded')) !== 'true') {
    await title.click();
  }
  await expect(page.locator(RELEASE)).toBeVisible({ timeout: 60_000 });
}

/** The split bar's segments as [role, version, percent]. */
async function segments(page: IJupyterLabPageFixture): Promise<[string, string, number][]> {
  return page.locator(`${RELEASE} .jp-ship-split-segment`).evaluateAll(nodes =>
    nodes.map(node => {
      const el = node as HTMLElement;
      const role = el.classList.contains('jp-ship-mod-canary') ? 'canary' : 'champion';
      return [role, el.dataset.version ?? '', Number(el.dataset.percent)] as [string, string, number];
    })
  );
}

/** Click `button` in the release, then the dialog's `accept` button. */
async function confirm(page: IJupyterLabPageFixture, button: string, accept: string): Promise<void> {
  await page.locator(`${RELEASE} ${button}`).click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toBeVisible();
  await dialog.locator('.jp-Dialog-button', { hasText: accept }).click();
  await expect(dialog).toHaveCount(0);
}

/** Scroll to `selector`, again if the panel's re-read replaced it meanwhile (the release
 * re-renders after each change and every 10 s; a replaced node is no longer attached). */
async function scrollTo(page: IJupyterLabPageFixture, selector: string): Promise<void> {
  await expect(async () => {
    await page.locator(selector).scrollIntoViewIfNeeded({ timeout: 2000 });
  }).toPass({ timeout: 15000 });
}

test.describe('Releases', () => {
  test('the Services panel shows the split, the canary’s checks, the shadow’s report and the decisions', async ({
    page
  }) => {
    await openServices(page);
    const release = page.locator(RELEASE);

    // Champion 1 takes 75 %, canary 2 takes 25 %; shadow 3 is marked under the bar.
    expect(await segments(page)).toEqual([
      ['champion', '1', 75],
      ['canary', '2', 25]
    ]);
    await expect(release.locator('.jp-ship-split-shadow[data-version="3"]')).toContainText('v3 shadow');
    await expect(release.locator('.jp-ship-split-steps')).toContainText('5 → [25] → 50 → 100 %');

    // The canary's live comparison, from the real gate on the seeded log.
    const comparison = release.locator('.jp-ship-release-comparison');
    await expect(comparison).toHaveAttribute('data-status', 'passing');
    await expect(comparison.locator('.jp-ship-release-status')).toHaveText('passing');
    for (const metric of ['error_rate', 'latency_p50_ms', 'latency_p99_ms', 'disagreement', 'accuracy']) {
      await expect(comparison.locator(`tr.jp-ship-check[data-metric="${metric}"]`)).toHaveCount(1);
    }
    const errorRate = comparison.locator('tr.jp-ship-check[data-metric="error_rate"]');
    await expect(errorRate).toContainText('error rate');
    await expect(errorRate).toContainText('passed');
    const detail = comparison.locator('tr.jp-ship-check[data-metric="error_rate"] + tr.jp-ship-check-detail');
    await expect(detail).toContainText("Fisher's exact test");
    await expect(detail).toContainText(/p=[\d.e-]+ · n=\d+ \/ \d+ · threshold/);

    // The shadow's report: agreement, per class and category, flips, deltas.
    const shadow = release.locator('.jp-ship-shadow-report[data-version="3"]');
    await expect(shadow.locator('.jp-ship-release-summary')).toContainText(/Shadow v3: [\d.]+ % agreement/);
    await expect(shadow.locator('.jp-ship-shadow-flips')).toContainText(/\d+ flips?: \d+ 1 → 0/);
    await expect(shadow).toContainText('Latency p99');
    await expect(shadow.locator('.jp-ship-agreement').last()).toContainText('premium');

    // Decisions, newest first: the gate's step, then by hand, down to the gate's rollback.
    const decisions = release.locator('.jp-ship-decision');
    await expect(decisions).toHaveCount(5);
    await expect(decisions.nth(0)).toHaveAttribute('data-action', 'step');
    await expect(decisions.nth(0).locator('.jp-ship-decision-by')).toHaveText('automatic');
    await expect(decisions.nth(1)).toContainText('Canary v2 started at 5 %');
    await expect(decisions.nth(1).locator('.jp-ship-decision-by')).toHaveText('by hand');
    const rollback = decisions.nth(3);
    await expect(rollback).toHaveAttribute('data-action', 'rollback');
    await expect(rollback).toContainText('error rate 31.0% on the canary');
    await rollback.locator('.jp-ship-decision-evidence > summary').click();
    await expect(rollback.locator('tr.jp-ship-check.jp-ship-mod-failing')).toHaveCount(2);

    // Buttons: a canary is live, so Promote and Roll back, not Start canary.
    await expect(release.locator('.jp-ship-release-promote')).toBeEnabled();
    await expect(release.locator('.jp-ship-release-rollback')).toBeEnabled();
    await expect(release.locator('.jp-ship-release-canary')).toBeDisabled();
    await expect(release.locator('.jp-ship-release-shadow')).toBeDisabled();

    // Nothing wider than the sidebar; texts on tinted backgrounds readable in both themes.
    const sidebar = page.locator('#jp-ship-sidebar');
    for (const theme of ['light', 'dark']) {
      if (theme === 'dark') {
        await page.theme.setDarkTheme();
        await expect(page.locator(RELEASE)).toBeVisible();
      }
      expect(await overflowOf(page, SERVICES)).toBeLessThanOrEqual(1);
      const pairs: [string, string][] = [
        [`${RELEASE} .jp-ship-split-segment.jp-ship-mod-champion .jp-ship-split-label`, `${RELEASE} .jp-ship-split-segment.jp-ship-mod-champion`],
        [`${RELEASE} .jp-ship-split-segment.jp-ship-mod-canary .jp-ship-split-label`, `${RELEASE} .jp-ship-split-segment.jp-ship-mod-canary`],
        [`${RELEASE} .jp-ship-split-shadow .jp-ship-split-label`, `${RELEASE} .jp-ship-split-shadow`],
        [`${RELEASE} .jp-ship-release-status`, `${RELEASE} .jp-ship-release-status`],
        [`${RELEASE} .jp-ship-decision-by.jp-ship-mod-automatic`, `${RELEASE} .jp-ship-decision-by.jp-ship-mod-automatic`],
        [`${RELEASE} .jp-ship-check-state.jp-ship-mod-failing`, `${RELEASE} .jp-ship-check-state.jp-ship-mod-failing`]
      ];
      for (const [text, box] of pairs) {
        const ratio = await contrastOf(page, text, box);
        test.info().annotations.push({ type: `release-contrast-${theme}`, description: `${text}: ${ratio.toFixed(2)}` });
        expect(ratio, `${theme} ${text}`).toBeGreaterThanOrEqual(4.5);
      }
      await page.locator(SERVICES).evaluate(node => node.scrollTo(0, 0));
      await shoot(page, `release-panel-${theme}`);
      await sidebar.screenshot({ path: path.join(SHOTS, `release-sidebar-${theme}.png`) });
      await scrollTo(page, `${RELEASE} .jp-ship-release-decisions`);
      await sidebar.screenshot({ path: path.join(SHOTS, `release-sidebar-decisions-${theme}.png`) });
    }
    await page.theme.setLightTheme();
  });

  test('a service opens as a page with requests, latency and errors per version, refreshing while open', async ({
    page
  }) => {
    await openServices(page);
    await page.locator(`${SERVICE} .jp-ship-service-open`).click();
    const tab = page.locator('.jp-ship-service-page-widget');
    await expect(tab).toBeVisible();
    await expect(page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: 'Service churn' })).toHaveClass(
      /lm-mod-current/
    );
    const charts = tab.locator('.jp-ship-service-chart');
    await expect(charts).toHaveCount(4, { timeout: 60_000 });
    for (const metric of ['rate_per_s', 'p50_ms', 'p99_ms', 'error_rate']) {
      const chart = tab.locator(`.jp-ship-service-chart[data-metric="${metric}"]`);
      // One line per version that answered (1 and 2), each with its points.
      for (const version of ['1', '2']) {
        await expect(chart.locator(`path.jp-ship-series-line[data-version="${version}"]`)).toHaveCount(1);
      }
      expect(await chart.locator('circle.jp-ship-series-point').count()).toBeGreaterThan(20);
    }
    const legend = tab.locator('.jp-ship-service-chart[data-metric="rate_per_s"] .jp-ship-legend-item');
    await expect(legend.filter({ hasText: 'v1 champion' })).toHaveCount(1);
    await expect(legend.filter({ hasText: 'v2 canary' })).toHaveCount(1);
    // The canary's share went from 5 % to 25 % half an hour ago: its rate rose.
    const rates = await tab
      .locator('.jp-ship-service-chart[data-metric="rate_per_s"] circle.jp-ship-series-point.jp-ship-series-1')
      .evaluateAll(nodes => nodes.map(n => Number(n.getAttribute('cy'))));
    const early = rates.slice(0, 10).reduce((a, b) => a + b, 0) / 10;
    const late = rates.slice(-10).reduce((a, b) => a + b, 0) / 10;
    expect(late).toBeLessThan(early); // higher rate: nearer the top (smaller y)
    // The release is on the page too.
    await expect(tab.locator('.jp-ship-release .jp-ship-split-segment')).toHaveCount(2);
    await expect(tab.locator('.jp-ship-release-comparison')).toBeVisible();

    for (const theme of ['light', 'dark']) {
      if (theme === 'dark') {
        await page.theme.setDarkTheme();
        await expect(charts).toHaveCount(4);
      }
      await shoot(page, `service-page-${theme}`);
    }
    await page.theme.setLightTheme();

    // While it is open it re-reads the timeline (every 10 s).
    const next = await page.waitForRequest(/\/ship\/api\/services\/churn\/timeline/, { timeout: 20_000 });
    expect(next.url()).toContain('window=1h');
    // Another window re-reads at once.
    const [six] = await Promise.all([
      page.waitForRequest(/\/ship\/api\/services\/churn\/timeline\?.*window=6h/),
      tab.locator('.jp-ship-service-page-window').selectOption('6h')
    ]);
    expect(six.url()).toContain('window=6h');
    await expect(charts).toHaveCount(4);
  });

  test('the buttons change the release after their dialogs: roll back, start a canary, shadows, promote', async ({
    page
  }) => {
    await openServices(page);
    const release = page.locator(RELEASE);

    // Cancelling the dialog changes nothing.
    await confirm(page, '.jp-ship-release-rollback', 'Cancel');
    expect(await segments(page)).toEqual([
      ['champion', '1', 75],
      ['canary', '2', 25]
    ]);

    // Roll back: the champion takes all the traffic; the history says it was by hand.
    await confirm(page, '.jp-ship-release-rollback', 'Roll back');
    await expect.poll(() => segments(page)).toEqual([['champion', '1', 100]]);
    await expect(release.locator('.jp-ship-release-comparison')).toHaveCount(0);
    const first = release.locator('.jp-ship-decision').first();
    await expect(first).toHaveAttribute('data-action', 'rollback');
    await expect(first.locator('.jp-ship-decision-by')).toHaveText('by hand');
    await expect(first).toContainText('Rolled back v2');
    await expect(release.locator('.jp-ship-release-promote')).toBeDisabled();
    await scrollTo(page, SERVICE);
    await shoot(page, 'release-rolled-back');

    // Start a canary: a share that is not a percentage is refused in the dialog itself.
    await release.locator('.jp-ship-release-canary').click();
    let dialog = page.locator('.jp-Dialog');
    await expect(dialog.locator('.jp-ship-canary-form')).toBeVisible();
    await dialog.locator('.jp-ship-form-version').selectOption('2');
    await dialog.locator('.jp-ship-form-percent').fill('0');
    await dialog.locator('.jp-Dialog-button', { hasText: 'Start canary' }).click();
    dialog = page.locator('.jp-Dialog');
    await expect(dialog.locator('.jp-ship-form-error')).toContainText('not “0”');
    await expect(dialog.locator('.jp-ship-form-percent')).toHaveValue('0');
    await dialog.locator('.jp-ship-form-percent').fill('10');
    await dialog.locator('.jp-ship-form-steps').fill('10, 50, 100');
    await shoot(page, 'release-canary-dialog');
    await dialog.locator('.jp-Dialog-button', { hasText: 'Start canary' }).click();
    await expect(page.locator('.jp-Dialog')).toHaveCount(0);
    await expect.poll(() => segments(page)).toEqual([
      ['champion', '1', 90],
      ['canary', '2', 10]
    ]);
    await expect(release.locator('.jp-ship-split-steps')).toContainText('[10] → 50 → 100 %');
    await expect(release.locator('.jp-ship-decision').first()).toContainText('Canary v2 started at 10 %');
    await expect(release.locator('.jp-ship-release-comparison')).toBeVisible();

    // Remove the shadow (its × button), then add it back.
    await confirm(page, '.jp-ship-split-shadow[data-version="3"] .jp-ship-release-unshadow', 'Remove shadow');
    await expect(release.locator('.jp-ship-split-shadow')).toHaveCount(0);
    await expect(release.locator('.jp-ship-decision').first()).toContainText('Shadow v3 removed');
    await release.locator('.jp-ship-release-shadow').click();
    dialog = page.locator('.jp-Dialog');
    await expect(dialog.locator('.jp-ship-form-version option')).toHaveText(['v3']);
    await dialog.locator('.jp-Dialog-button', { hasText: 'Add shadow' }).click();
    await expect(release.locator('.jp-ship-split-shadow[data-version="3"]')).toBeVisible();
    await expect(release.locator('.jp-ship-decision').first()).toContainText('Shadow v3 added');

    // Promote: v2 is the champion and takes all the traffic.
    await confirm(page, '.jp-ship-release-promote', 'Promote');
    await expect.poll(() => segments(page)).toEqual([['champion', '2', 100]]);
    const promoted = release.locator('.jp-ship-decision').first();
    await expect(promoted).toContainText('Promoted v2 to champion');
    await expect(promoted.locator('.jp-ship-decision-by')).toHaveText('by hand');
  });
});
