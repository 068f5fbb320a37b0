/**
 * The Review panel in a real JupyterLab, on `review/` as seeded by tests/ui/seed_review.py:
 * the `digits` service served for real, its answers to clean and shifted digits scored in
 * its prediction log. With the keyboard only: label one item with its class's key, skip
 * one, confirm one with Enter, undo that; the log holds exactly the one label, and the
 * undone item waits again. Then the service serves again (new traffic) and a refresh
 * shows the new items, the label kept.
 * Screenshots: review-sidebar.png (the sidebar at the Review section, an image) and
 * review-sidebar-table.png (monitor/'s churn service: a table of features).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { overflowOf } from './measure';

const SHOTS = path.resolve(__dirname, '..', 'screenshots');
const PANEL = '#jp-ship-review';
const ITEM = `${PANEL} .jp-ship-review-item`;
const NOTEBOOK = 'review/digits.ipynb';
const REPO = path.resolve(__dirname, '..', '..', '..');

interface IApp {
  commands: { execute(id: string, args?: unknown): Promise<unknown> };
}

interface IItem {
  request_id: string;
  row: number;
  prediction: number;
  reason: string;
  scores: { confidence: number; ood_feature: string | null };
}

interface IQueue {
  items: IItem[];
  pending: number;
  labelled: number;
}

/** tests/ui/seed_review.py on the seeded folder, with `args`; its standard output. */
function seed(...args: string[]): string {
  const python = process.env.SHIP_PYTHON ?? path.join(REPO, '.venv', 'bin', 'python');
  const folder = path.join(process.env.SHIP_UI_ROOT!, 'review');
  return execFileSync(python, [path.join(__dirname, '..', 'seed_review.py'), folder, ...args], {
    encoding: 'utf-8',
    env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' }
  });
}

/** The labels in the service's prediction log: {"REQUEST_ID/ROW": value}. */
function loggedLabels(): { [key: string]: unknown } {
  return JSON.parse(seed('--labels').trim().split('\n').pop()!);
}

/** The queue as the REST API answers it. */
async function queue(page: IJupyterLabPageFixture): Promise<IQueue> {
  const response = await page.request.get(`/ship/api/services/digits/review?notebook=${encodeURIComponent(NOTEBOOK)}`);
  expect(response.ok()).toBe(true);
  return (await response.json()) as IQueue;
}

function reasonOf(item: IItem): string {
  return item.reason === 'ood'
    ? `unusual input: ${item.scores.ood_feature} far outside training`
    : `model unsure (confidence ${item.scores.confidence.toFixed(2)})`;
}

/** Open a seeded notebook and the Ship sidebar with only the Review section open. */
async function openReview(page: IJupyterLabPageFixture, notebook = NOTEBOOK): Promise<void> {
  await page.evaluate(async (notebook: string) => {
    const app = (window as unknown as { jupyterapp: IApp }).jupyterapp;
    await app.commands.execute('docmanager:open', { path: notebook });
  }, notebook);
  await page.notebook.activate(path.basename(notebook));
  await page.sidebar.openTab('jp-ship-sidebar');
  const title = page.locator('#jp-ship-sidebar .jp-AccordionPanel-title', { hasText: 'Review' });
  if ((await title.getAttribute('aria-expanded')) !== 'true') {
    await title.click();
  }
  await expect(page.locator(`${ITEM}[data-request]`)).toBeVisible({ timeout: 60_000 });
}

test.describe('Human review', () => {
  test('label with the keyboard, skip, undo; new traffic after a restart joins the queue', async ({ page }) => {
    const started = Date.now();
    const before = await queue(page);
    expect(before.items.length).toBeGreaterThanOrEqual(4);
    const [a, b, c, d] = before.items;
    expect(loggedLabels()).toEqual({});
    await openReview(page);

    // The oldest item: its image, why it was routed, the prediction, a key per class.
    const item = page.locator(ITEM);
    const status = page.locator(`${PANEL} .jp-ship-status`);
    await expect(item).toHaveAttribute('data-request', a.request_id);
    await expect(item.locator('.jp-ship-review-image rect')).toHaveCount(64);
    await expect(item.locator('.jp-ship-review-reason')).toHaveText(reasonOf(a));
    await expect(item.locator('.jp-ship-review-predicted')).toHaveText(String(a.prediction));
    await expect(item.locator('.jp-ship-review-probabilities li')).toHaveCount(3);
    await expect(item.locator('.jp-ship-review-label kbd')).toHaveText(
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
    );
    await expect(status).toContainText(`${before.pending} waiting · 0 labelled`);
    expect(await overflowOf(page, PANEL)).toBeLessThanOrEqual(1);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.locator('#jp-ship-sidebar').screenshot({ path: path.join(SHOTS, 'review-sidebar.png') });

    // Keyboard only: 3 labels a, s skips b, Enter confirms c's prediction, u takes that back.
    await item.focus();
    await page.keyboard.press('3');
    await expect(item).toHaveAttribute('data-request', b.request_id);
    await expect(item).toBeFocused();
    await page.keyboard.press('s');
    await expect(item).toHaveAttribute('data-request', c.request_id);
    await expect(item.locator('.jp-ship-review-reason')).toHaveText(reasonOf(c));
    await page.keyboard.press('Enter');
    await expect(item).toHaveAttribute('data-request', d.request_id);
    await expect(status).toContainText(`${before.pending - 2} waiting · 2 labelled`);
    await page.keyboard.press('u');
    await expect(item).toHaveAttribute('data-request', c.request_id);
    await expect(item).toBeFocused();
    await expect(status).toContainText(`${before.pending - 1} waiting · 1 labelled`);

    // Once the writes are done, the log holds exactly a's label; the undone c waits again,
    // and so does the skipped b.
    await expect(item).toHaveAttribute('data-saving', '0');
    expect(loggedLabels()).toEqual({ [`${a.request_id}/0`]: 3 });
    const labelled = await queue(page);
    const waiting = labelled.items.map(i => i.request_id);
    expect(waiting).not.toContain(a.request_id);
    expect(waiting).toEqual(expect.arrayContaining([b.request_id, c.request_id]));
    expect(labelled.pending).toBe(before.pending - 1);
    expect(labelled.labelled).toBe(1);

    // The service serves again: new traffic, then a refresh shows its items, a's label kept.
    const added: string[] = JSON.parse(seed('--more', '4').trim().split('\n').pop()!);
    const after = await queue(page);
    expect(after.items.map(i => i.request_id)).toEqual(expect.arrayContaining(added));
    expect(after.pending).toBe(labelled.pending + added.length);
    await page.locator(`${PANEL} .jp-ship-refresh`).click();
    await expect(status).toContainText(`${after.pending} waiting · 1 labelled`);
    await expect(item).toHaveAttribute('data-request', c.request_id); // the item shown stays
    // The new items come before the skipped b.
    await item.focus();
    const seen: string[] = [];
    for (let i = 0; i < after.pending; i++) {
      seen.push((await item.getAttribute('data-request'))!);
      await page.keyboard.press('s');
    }
    expect(seen).toEqual(expect.arrayContaining(added));
    expect(seen.indexOf(b.request_id)).toBe(seen.length - 1);
    expect(seen).not.toContain(a.request_id);
    expect(loggedLabels()).toEqual({ [`${a.request_id}/0`]: 3 });
    test.info().annotations.push({ type: 'review-seconds', description: ((Date.now() - started) / 1000).toFixed(1) });
  });

  test('a table of features, the row of a request of several, and its classes (monitor/)', async ({ page }) => {
    // monitor/'s churn service: three features, requests of 25 rows, no class names in
    // its schema (the probabilities name them). Nothing is labelled here.
    await openReview(page, 'monitor/churn.ipynb');
    const item = page.locator(ITEM);
    await expect(item.locator('.jp-ship-review-features td:first-child')).toHaveText(['age', 'income', 'plan']);
    await expect(item.locator('.jp-ship-review-image')).toHaveCount(0);
    await expect(item.locator('.jp-ship-review-meta')).toContainText(/row \d+ of 25/);
    await expect(item.locator('.jp-ship-review-label')).toHaveText(['0', '1']);
    await expect(item.locator('.jp-ship-review-reason')).not.toBeEmpty();
    expect(await overflowOf(page, PANEL)).toBeLessThanOrEqual(1);
    await page.locator('#jp-ship-sidebar').screenshot({ path: path.join(SHOTS, 'review-sidebar-table.png') });
  });
});
