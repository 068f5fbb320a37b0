/**
 * The Ship sidebar at JupyterLab's default width, on `monitor/` as seeded by
 * tests/ui/seed_monitor.py: one section open at a time (an accordion), nothing wider
 * than the sidebar in any section, and the drift banner readable in both themes.
 * Screenshots: sidebar-<section>.png, sidebar-drift-{light,dark}.png and the sidebar alone,
 * drift-banner-{light,dark}.png.
 */
import * as fs from 'fs';
import * as path from 'path';

import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { contrastOf, overflowOf } from './measure';

const SHOTS = path.resolve(__dirname, '..', 'screenshots');
const TITLES = '#jp-ship-sidebar .jp-AccordionPanel-title';

interface IApp {
  commands: { execute(id: string, args?: unknown): Promise<unknown> };
}

async function shoot(page: IJupyterLabPageFixture, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Each section, its panel and what shows once it has loaded. */
const SECTIONS: { label: string; id: string; loaded: string }[] = [
  { label: 'Experiments', id: 'jp-ship-experiments', loaded: '.jp-ship-run' },
  { label: 'Models', id: 'jp-ship-models', loaded: '.jp-ship-leaderboard-run' },
  { label: 'Services', id: 'jp-ship-services', loaded: '.jp-ship-service' },
  { label: 'Drift', id: 'jp-ship-drift', loaded: '.jp-ship-drift-dataset' },
  { label: 'Cost', id: 'jp-ship-cost', loaded: '.jp-ship-cost-service' },
  { label: 'Workspace', id: 'jp-ship-workspace', loaded: '.jp-ship-link, .jp-ship-value' }
];

test.describe('Sidebar', () => {
  test('one section at a time, each within the default width; the drift banner in both themes', async ({
    page
  }) => {
    await page.evaluate(async () => {
      const app = (window as unknown as { jupyterapp: IApp }).jupyterapp;
      await app.commands.execute('docmanager:open', { path: 'monitor/churn.ipynb' });
    });
    await page.notebook.activate('churn.ipynb');
    await page.sidebar.openTab('jp-ship-sidebar');
    const sidebar = page.locator('#jp-ship-sidebar');
    await expect(sidebar).toBeVisible();
    const width = (await sidebar.boundingBox())!.width;
    test.info().annotations.push({ type: 'sidebar-width', description: String(width) });

    // At first only Experiments is open.
    await expect(page.locator(`${TITLES}[aria-expanded="true"]`)).toHaveText(['Experiments']);

    for (const section of SECTIONS) {
      const title = page.locator(TITLES, { hasText: section.label });
      if ((await title.getAttribute('aria-expanded')) !== 'true') {
        await title.click();
      }
      // Opening one closes the others.
      await expect(page.locator(`${TITLES}[aria-expanded="true"]`)).toHaveText([section.label]);
      const panel = page.locator(`#${section.id}`);
      await expect(panel).toBeVisible();
      await expect(panel.locator(section.loaded).first()).toBeVisible({ timeout: 60_000 });
      // Nothing reaches past the panel (wide tables scroll inside their own box).
      expect(await overflowOf(page, `#${section.id}`), section.label).toBeLessThanOrEqual(1);
      expect(await overflowOf(page, '#jp-ship-sidebar'), section.label).toBeLessThanOrEqual(1);
      await shoot(page, `sidebar-${section.label.toLowerCase()}`);
    }

    // Closing the open section leaves all closed.
    await page.locator(TITLES, { hasText: 'Workspace' }).click();
    await expect(page.locator(`${TITLES}[aria-expanded="true"]`)).toHaveCount(0);

    // The drift banner: readable in the light and the dark theme.
    await page.locator(TITLES, { hasText: 'Drift' }).click();
    const banner = '#jp-ship-drift .jp-ship-drift-dataset';
    await expect(page.locator(banner)).toHaveClass(/jp-ship-mod-drift/, { timeout: 60_000 });
    fs.mkdirSync(SHOTS, { recursive: true });
    for (const theme of ['light', 'dark']) {
      if (theme === 'dark') {
        await page.theme.setDarkTheme();
      }
      for (const text of ['strong', '.jp-ship-drift-rule', '.jp-ship-drift-list']) {
        const ratio = await contrastOf(page, `${banner} ${text}`, banner);
        test.info().annotations.push({
          type: `drift-banner-contrast-${theme}`,
          description: `${text}: ${ratio.toFixed(2)}`
        });
        expect(ratio, `${theme} ${text}`).toBeGreaterThanOrEqual(4.5);
      }
      expect(await overflowOf(page, '#jp-ship-drift')).toBeLessThanOrEqual(1);
      await shoot(page, `sidebar-drift-${theme}`);
      await sidebar.screenshot({ path: path.join(SHOTS, `drift-banner-${theme}.png`) });
    }
    await page.theme.setLightTheme();
  });
});
