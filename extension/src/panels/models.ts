import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { getLeaderboard, listModels, setAlias } from '../api';
import { el, formatMoney, formatNumber } from '../format';
import { describeError, ErrorNotifier, longAction } from '../notify';
import { ILeaderboard, ILeaderboardRow, IModelSummary } from '../tokens';

/** The alias "Make champion" moves. */
const CHAMPION = 'champion';

/** Bytes as "12.3 kB", "4.1 MB". */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) {
    return '—';
  }
  const units = ['B', 'kB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : Number(value.toPrecision(3))} ${units[unit]}`;
}

/** Milliseconds as "0.42 ms". */
export function formatMs(ms: number | null): string {
  return ms === null ? '—' : `${formatNumber(ms)} ms`;
}

/**
 * The Models panel: the workspace's registered models, and per model its versions
 * with aliases and the leaderboard (metric, latency, size, training cost,
 * precision, exporter, parity). "Make champion" moves the alias after a confirmation.
 */
export class ModelsPanel extends Widget {
  constructor(trans: TranslationBundle) {
    super();
    this._trans = trans;
    this.id = 'jp-ship-models';
    this.addClass('jp-ship-models');
    this.title.label = trans.__('Models');

    const bar = el('div', 'jp-ship-toolbar');
    const refresh = el('button', 'jp-ship-button', trans.__('Refresh'));
    refresh.title = trans.__('Reload the registered models');
    refresh.addEventListener('click', () => void this.refresh());
    bar.append(refresh);
    this._status = el('p', 'jp-ship-status', trans.__('Loading models…'));
    this._list = el('div', 'jp-ship-model-list');
    this.node.append(bar, this._status, this._list);
  }

  /** Read the models of this notebook's workspace (else of Jupyter's root). */
  setNotebook(path: string | null): void {
    if (path !== this._notebook) {
      this._notebook = path;
      if (this.isVisible) {
        void this.refresh();
      }
    }
  }

  /** Fetch the models and their leaderboards, and render them. */
  async refresh(): Promise<void> {
    const notebook = this._notebook;
    try {
      const list = await listModels(notebook);
      const boards = await Promise.all(
        list.models.map(model => getLeaderboard(model.name, notebook))
      );
      if (notebook === this._notebook) {
        this._render(list.models, boards);
        this._errors.clear();
      }
    } catch (error) {
      const message = describeError(this._trans, error);
      this._status.textContent = message;
      this._status.classList.add('jp-ship-error');
      this._errors.show(message);
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  private _render(models: IModelSummary[], boards: ILeaderboard[]): void {
    const trans = this._trans;
    this._status.classList.remove('jp-ship-error');
    this._status.textContent = models.length
      ? trans._n('%1 registered model', '%1 registered models', models.length)
      : trans.__('No registered models yet: export one with %1.', '%ship export');
    this._list.replaceChildren(
      ...models.map((model, i) => this._renderModel(model, boards[i]))
    );
  }

  private _renderModel(model: IModelSummary, board: ILeaderboard): HTMLElement {
    const trans = this._trans;
    const section = el('section', 'jp-ship-model');
    section.dataset.model = model.name;
    const heading = el('h3', 'jp-ship-model-name', model.name);
    const aliases = Object.entries(model.aliases)
      .map(([alias, version]) => `${alias} → v${version}`)
      .join(', ');
    const meta = el(
      'span',
      'jp-ship-model-meta',
      trans._n('%1 version', '%1 versions', model.versions) + (aliases ? ` · ${aliases}` : '')
    );
    heading.append(' ', meta);

    const table = el('table', 'jp-ship-leaderboard');
    const metricName = board.versions.find(r => r.metric_name)?.metric_name ?? trans.__('metric');
    const head = el('tr', '');
    for (const label of [
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
    ]) {
      head.append(el('th', '', label));
    }
    const body = el('tbody', '');
    // Newest first: the version a user just exported is on top.
    for (const row of [...board.versions].reverse()) {
      body.append(this._renderRow(model.name, row));
    }
    table.append(el('thead', ''), body);
    table.tHead!.append(head);
    const scroll = el('div', 'jp-ship-table-scroll');
    scroll.append(table);
    section.append(heading, scroll);
    return section;
  }

  private _renderRow(name: string, row: ILeaderboardRow): HTMLTableRowElement {
    const trans = this._trans;
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

  private async _makeChampion(name: string, version: string): Promise<void> {
    const trans = this._trans;
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
        setAlias(name, CHAMPION, version, this._notebook),
        trans.__('Making version %1 of %2 the champion…', version, name),
        trans.__('Version %1 of %2 is the champion.', version, name)
      );
    } catch {
      return; // the notification shows the error
    }
    await this.refresh();
  }

  private readonly _trans: TranslationBundle;
  private readonly _status: HTMLElement;
  private readonly _list: HTMLElement;
  private readonly _errors = new ErrorNotifier();
  private _notebook: string | null = null;
}
