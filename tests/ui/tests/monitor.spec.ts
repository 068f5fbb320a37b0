/**
 * The Drift and Cost panels in a real JupyterLab, on `monitor/` as seeded by
 * tests/ui/seed_monitor.py: the `churn` service with a reference profile and a day of
 * normal then shifted traffic, and three tracked runs of `monitor/churn.ipynb`.
 * Screenshots go to tests/ui/screenshots/ (drift.png, drift-feature.png, cost.png,
 * cost-dark.png).
 */
import * as fs from 'fs';
import * as path from 'path';

import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

const SHOTS = path.resolve(__dirname, '..', 'screenshots');
const DRIFT = '#jp-ship-drift';
const COST = '#jp-ship-cost';

interface IApp {
  commands: { execute(id: string, args?: unknown): Promise<unknown> };
}

async function shoot(page: IJupyterLabPageFixture, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/**
 * Open the seeded notebook and the Ship sidebar with the `keep` section of the
 * accordion open (opening one closes the others, so it has the sidebar's height).
 */
async function openPanel(page: IJupyterLabPageFixture, keep: string): Promise<void> {
  await page.evaluate(async () => {
    const app = (window as unknown as { jupyterapp: IApp }).jupyterapp;
    await app.commands.execute('docmanager:open', { path: 'monitor/churn.ipynb' });
  });
  await page.notebook.activate('churn.ipynb');
  await page.sidebar.openTab('jp-ship-sidebar');
  await page.sidebar.setWidth(340);
  const title = page.locator('#jp-ship-sidebar .jp-AccordionPanel-title', { hasText: keep });
  if ((await title.getAttribute('aria-expanded')) !== 'true') {
    await title.click();
  }
  await expect(page.locator('#jp-ship-sidebar .jp-AccordionPanel-title[aria-expanded="true"]')).toHaveText(
    [keep]
  );
}

test.describe('Drift and Cost panels', () => {
  test('drift per feature over time, and a feature’s reference vs current histogram', async ({
    page
  }) => {
    await openPanel(page, 'Drift');
    const panel = page.locator(DRIFT);
    await expect(panel).toBeVisible();
    await expect(panel.locator('.jp-ship-drift-service')).toHaveValue('churn');
    // The last hours are shifted: the current window drifts, and so do the last cells.
    await expect(panel.locator('.jp-ship-drift-dataset')).toHaveClass(/jp-ship-mod-drift/, {
      timeout: 60_000
    });
    await expect(panel.locator('.jp-ship-drift-dataset')).toContainText('Dataset drift');
    const rows = panel.locator('.jp-ship-drift-row');
    await expect(rows.filter({ hasText: 'age' })).toHaveClass(/jp-ship-mod-drift/);
    await expect(panel.locator('.jp-ship-drift-table')).toContainText('prediction');
    const cells = panel.locator('.jp-ship-heatstrip rect.jp-ship-heat');
    expect(await cells.count()).toBeGreaterThanOrEqual(3 * 20);
    expect(await panel.locator('rect.jp-ship-heat-drift').count()).toBeGreaterThan(0);
    expect(await panel.locator('rect.jp-ship-heat-ok').count()).toBeGreaterThan(0);
    await expect(panel.locator('.jp-ship-drift-performance')).toContainText('accuracy');
    await shoot(page, 'drift');

    // Clicking a feature shows its score over time and the two distributions.
    await rows.filter({ hasText: 'age' }).click();
    const detail = panel.locator('.jp-ship-drift-detail[data-feature="age"]');
    await expect(detail).toBeVisible();
    expect(await detail.locator('rect.jp-ship-hist-ref').count()).toBeGreaterThan(3);
    expect(await detail.locator('rect.jp-ship-hist-cur').count()).toBeGreaterThan(3);
    await expect(detail.locator('.jp-ship-scoreline .jp-ship-chart-threshold')).toHaveCount(1);
    await detail.scrollIntoViewIfNeeded();
    await shoot(page, 'drift-feature');

    // A categorical feature: paired bars per category; another window recomputes.
    await rows.filter({ hasText: 'plan' }).click();
    const plan = panel.locator('.jp-ship-drift-detail[data-feature="plan"]');
    await expect(plan.locator('.jp-ship-histogram.jp-ship-mod-categorical')).toBeVisible();
    await panel.locator('.jp-ship-drift-window').selectOption('6h');
    await expect(panel.locator('.jp-ship-status')).toContainText('6 h', { timeout: 30_000 });
  });

  test('cost per run of the notebook, per service, and totals', async ({ page }) => {
    await openPanel(page, 'Cost');
    const panel = page.locator(COST);
    await expect(panel).toBeVisible();
    const runs = panel.locator('.jp-ship-cost-run');
    await expect(runs).toHaveCount(3, { timeout: 60_000 });
    await expect(runs.first()).toContainText('CPU');
    await expect(runs.first()).toContainText('USD');
    const service = panel.locator('.jp-ship-cost-service[data-service="churn"]');
    await expect(service).toContainText('CPU / 1k predictions');
    await expect(service.locator('.jp-ship-mod-measured').first()).toBeVisible();
    await expect(service.locator('.jp-ship-mod-estimated').first()).toBeVisible();
    await expect(panel.locator('.jp-ship-cost-totals')).toContainText('Total');
    await shoot(page, 'cost');

    await page.theme.setDarkTheme();
    await shoot(page, 'cost-dark');
    await page.theme.setLightTheme();
  });
});
