/**
 * Galata (Playwright) configuration for the Ship extension's browser tests.
 *
 * Chromium is the system one (/usr/bin/chromium, or SHIP_UI_CHROMIUM); Playwright
 * never downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 in run.sh). The
 * server is `jupyter-lab` itself, so Playwright stops it (and its kernels) by PID.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { defineConfig } from '@playwright/test';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const galata = require('@jupyterlab/galata/lib/playwright-config');

const port = Number(process.env.SHIP_UI_PORT ?? '8876');
// One server root for the whole run; worker processes inherit it through the environment.
if (!process.env.SHIP_UI_ROOT) {
  process.env.SHIP_UI_ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'ship-ui-'));
}
const root = process.env.SHIP_UI_ROOT;

export default defineConfig({
  ...galata,
  testDir: 'tests',
  outputDir: 'test-results',
  reporter: [['list']],
  timeout: 240_000,
  expect: { timeout: 30_000 },
  workers: 1,
  retries: 0,
  globalSetup: require.resolve('./global-setup'),
  use: {
    ...galata.use,
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1400, height: 900 },
    trace: 'off',
    video: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.SHIP_UI_CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-dev-shm-usage'
      ]
    }
  },
  webServer: {
    command: 'jupyter-lab --config jupyter_server_test_config.py',
    url: `http://127.0.0.1:${port}/lab`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
    env: {
      ...(process.env as { [key: string]: string }),
      JUPYTERLAB_GALATA_ROOT_DIR: root,
      SHIP_UI_PORT: String(port)
    },
    gracefulShutdown: { signal: 'SIGTERM', timeout: 20_000 }
  }
});
