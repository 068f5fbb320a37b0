import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { getLeaderboard, listModels, setAlias } from '../api';
import { el, formatBytes, formatMoney, formatMs, formatNumber, formatPairs } from '../format';
import { longAction } from '../notify';
import { ILeaderboard, ILeaderboardRow, IModelSummary } from '../tokens';
import { headedTable, scrolling, ShipPanel } from './base';

/** The alias "Make champion" moves. */
const CHAMPION = 'champion';

/** The params a version's run line shows before "+n" (the tooltip has them all). */
const RUN_PARAMS = 4;

/**
 * The Models panel: the workspace's registered models, and per model its versions
 * with aliases and the leaderboard (metric, latency, size, training cost,
 * precision, exporter, parity), and under each version the run that produced it and
 * its first params. "Make champion" moves the alias after a confirmation.
 */
export class ModelsPanel extends ShipPanel {
  constructor(trans: TranslationBundle) {
    super({
      trans,
      id: 'jp-ship-models',
      className: 'jp-ship-models',
      label: trans.__('Models'),
      loading: trans.__('Loading models…'),
      refreshTitle: trans.__('Reload the registered models'),
      bodyClass: 'jp-ship-model-list'
    });
  }

  /** Fetch the models and their leaderboards, and render them. */
  protected async load(notebook: string | null): Promise<void> {
    const list = await listModels(notebook);
    const boards = await Promise.all(
      list.models.map(model => getLeaderboard(model.name, notebook))
    );
    if (!this.isStale(notebook)) {
      this._render(list.models, boards);
    }
  }

  private _render(models: IModelSummary[], boards: ILeaderboard[]): void {
    const trans = this.trans;
    this.setStatus(
      models.length
        ? trans._n('%1 registered model', '%1 registered models', models.length)
        : trans.__('No registered models yet: export one with %1.', '%ship export')
    );
    this.body.replaceChildren(
      ...models.map((model, i) => this._renderModel(model, boards[i]))
    );
  }

  private _renderModel(model: IModelSummary, board: ILeaderboard): HTMLElement {
    const trans = this.trans;
    const section = el('section', 'jp-ship-model');
    section.dataset.model = model.name;
    const heading = el('h3', 'jp-ship-model-name');
    heading.append(el('span', 'jp-ship-model-title', model.name));
    const aliases = Object.entries(model.aliases)
      .map(([alias, version]) => `${alias} → v${version}`)
      .join(', ');
    const meta = el(
      'span',
      'jp-ship-model-meta',
      trans._n('%1 version', '%1 versions', model.versions) + (aliases ? ` · ${aliases}` : '')
    );
    heading.append(' ', meta);
    heading.title = `${model.name} · ${meta.textContent}`;

    const metricName = board.versions.find(r => r.metric_name)?.metric_name ?? trans.__('metric');
    const labels = [
      trans.__('Version'),
      metricName,
      trans.__('p50'),
      trans.__('p99'),
      trans.__('Size'),
      trans.__('Training cost'),
      trans.__('Precision'),
      trans.__('Exporter'),
      trans.__('Parity'),
      ''
    ];
    const table = headedTable('jp-ship-leaderboard', labels);
    // Newest first: the version a user just exported is on top.
    for (const row of [...board.versions].reverse()) {
      table.tBodies[0].append(this._renderRow(model.name, row));
      const run = this._renderRun(row, labels.length);
      if (run) {
        table.tBodies[0].append(run);
      }
    }
    section.append(heading, scrolling(table));
    return section;
  }

  private _renderRow(name: string, row: ILeaderboardRow): HTMLTableRowElement {
    const trans = this.trans;
    const tr = el('tr', 'jp-ship-leaderboard-row');
    tr.dataset.version = row.version;
    const version = el('td', 'jp-ship-leaderboard-version', `v${row.version}`);
    for (const alias of row.aliases) {
      version.append(' ', el('span', `jp-ship-alias jp-ship-alias-${alias}`, alias));
    }
    const parity = el('td', `jp-ship-parity jp-ship-parity-${row.parity.replace(/\s+/g, '-')}`, row.parity);
    if (row.parity_max_abs_error !== null) {
      parity.title = trans.__('max abs error %1', formatNumber(row.parity_max_abs_error));
    }
    const action = el('td', '');
    if (!row.aliases.includes(CHAMPION)) {
      const button = el('button', 'jp-ship-button jp-ship-champion-button', trans.__('Make champion'));
      button.title = trans.__('Point the %1 alias at version %2', CHAMPION, row.version);
      button.addEventListener('click', () => void this._makeChampion(name, row.version));
      action.append(button);
    }
    tr.append(
      version,
      el('td', '', formatNumber(row.metric)),
      el('td', '', formatMs(row.p50_ms)),
      el('td', '', formatMs(row.p99_ms)),
      el('td', '', formatBytes(row.size_bytes)),
      el('td', '', formatMoney(trans, row.training_cost, row.cost_currency)),
      el('td', '', row.precision ?? '—'),
      el('td', '', row.exporter ?? '—'),
      parity,
      action
    );
    return tr;
  }

  /**
   * The line under a version: the run that produced it and its first params
   * ("run train-C0.05  C=0.05  n=12000"), ellipsized, all of it in the tooltip.
   * Null when the version has no run (and no params) to tell it by.
   */
  private _renderRun(row: ILeaderboardRow, columns: number): HTMLTableRowElement | null {
    const trans = this.trans;
    const name = row.run_name ?? (row.run_id ? row.run_id.slice(0, 8) : null);
    const keys = Object.keys(row.params);
    if (name === null && !keys.length) {
      return null;
    }
    const tr = el('tr', 'jp-ship-leaderboard-run');
    tr.dataset.version = row.version;
    const cell = el('td', '');
    cell.colSpan = columns;
    const line = el('div', 'jp-ship-leaderboard-run-line');
    const run = name === null ? trans.__('no run') : trans.__('run %1', name);
    line.append(el('span', 'jp-ship-leaderboard-run-name', run));
    if (keys.length) {
      line.append('  ', el('span', 'jp-ship-leaderboard-params', formatPairs(row.params, RUN_PARAMS)));
    }
    const all = keys.map(key => `${key}=${row.params[key]}`);
    line.title = [
      trans.__('Version %1 from run %2', row.version, name ?? '—') +
        (row.run_id ? ` (${row.run_id})` : ''),
      ...(all.length ? all : [trans.__('no params')])
    ].join('\n');
    cell.append(line);
    tr.append(cell);
    return tr;
  }

  private async _makeChampion(name: string, version: string): Promise<void> {
    const trans = this.trans;
    const answer = await showDialog({
      title: trans.__('Make version %1 of %2 the champion?', version, name),
      body: trans.__(
        'The %1 alias moves to version %2. Services and clients that load models:/%3@%1 get this version.',
        CHAMPION,
        version,
        name
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Make champion') })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await longAction(
        trans,
        setAlias(name, CHAMPION, version, this.notebook),
        trans.__('Making version %1 of %2 the champion…', version, name),
        trans.__('Version %1 of %2 is the champion.', version, name)
      );
    } catch {
      return; // the notification shows the error
    }
    await this.refresh();
  }
}
