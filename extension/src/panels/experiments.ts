import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { getRun, listExperiments, listRuns } from '../api';
import { describeError, ErrorNotifier } from '../notify';
import { IRun, IRunPage } from '../tokens';
import { IRunActions, renderDetail, renderRow, selectionKey } from './runlist';

/** Runs shown at most; the server counts the rest. */
const LIMIT = 1000;
/** Poll delays (ms): right after a cell ran, while runs are pending, and otherwise. */
const BURST_DELAYS = [500, 1000, 1000, 2000, 2000, 4000];
const PENDING_DELAY = 2000;
const IDLE_DELAY = 15000;
const BURST_MS = 60000;

/**
 * The Experiments panel: the runs of the notebook in focus, newest first.
 *
 * It follows the notebook (`setNotebook`), refreshes when a cell of that notebook
 * finished (`cellExecuted`) and then polls quickly while runs are pending, and
 * slowly otherwise while visible (runs from `ship run` appear too). Polls are
 * conditional requests: when nothing changed the server answers 304 and the list
 * is left as it is. Select two or more runs to compare them.
 */
export class ExperimentsPanel extends Widget {
  constructor(options: ExperimentsPanel.IOptions) {
    super();
    this._trans = options.trans;
    this._options = options;
    const trans = this._trans;
    this.id = 'jp-ship-experiments';
    this.addClass('jp-ship-experiments');
    this.title.label = trans.__('Experiments');

    const bar = document.createElement('div');
    bar.className = 'jp-ship-toolbar';
    this._notebookLabel = document.createElement('span');
    this._notebookLabel.className = 'jp-ship-notebook-name';
    this._filter = document.createElement('select');
    this._filter.className = 'jp-ship-experiment-filter';
    this._filter.title = trans.__('Show the runs of one experiment');
    this._filter.addEventListener('change', () => void this.refresh());
    this._compare = this._button(trans.__('Compare'), () => this._openCompare());
    this._compare.classList.add('jp-ship-compare-button');
    const refresh = this._button(trans.__('Refresh'), () => void this.refresh());
    refresh.title = trans.__('Reload the runs of this notebook');
    this._uiLink = document.createElement('a');
    this._uiLink.className = 'jp-ship-link jp-ship-mlflow-link';
    this._uiLink.textContent = trans.__('MLflow UI');
    this._uiLink.target = '_blank';
    this._uiLink.rel = 'noopener noreferrer';
    this._uiLink.hidden = true;
    bar.append(this._notebookLabel, this._filter, this._compare, refresh, this._uiLink);

    this._status = document.createElement('p');
    this._status.className = 'jp-ship-status';
    this._list = document.createElement('ul');
    this._list.className = 'jp-ship-runs';
    this._list.addEventListener('click', event => this._onClick(event));
    this.node.append(bar, this._status, this._list);
    this._resetFilter();
    this._showEmpty();
  }

  /** The notebook whose runs are shown (path relative to the server root), or null. */
  get notebook(): string | null {
    return this._notebook;
  }

  /** Follow another notebook. */
  setNotebook(path: string | null): void {
    if (path === this._notebook) {
      return;
    }
    this._notebook = path;
    this._page = null;
    this._shownKey = '';
    this._selected.clear();
    this._expanded.clear();
    this._list.replaceChildren();
    this._resetFilter();
    this._showEmpty();
    void this.refresh();
    if (path !== null) {
      void this._loadExperiments();
    }
  }

  /** A cell of the followed notebook finished: its run, if tracked, is in the spool now. */
  cellExecuted(): void {
    this._burstUntil = Date.now() + BURST_MS;
    this._burstStep = 0;
    void this.refresh();
  }

  /**
   * Fetch the runs (a 304 when nothing changed) and re-render only when they changed.
   * Concurrent calls share one request; a call during a request runs once after it.
   */
  async refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return this._inFlight;
    }
    this._inFlight = this._load().finally(() => {
      this._inFlight = null;
      if (this._again) {
        this._again = false;
        void this.refresh();
      } else {
        this._schedule();
      }
    });
    return this._inFlight;
  }

  /**
   * Milliseconds from building the rows to their first paint, for the last render
   * (also on the list as `data-render-ms`; `data-load-ms` counts from the request).
   */
  get lastRenderMs(): number {
    return this._lastRenderMs;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearTimeout(this._timer);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private async _load(): Promise<void> {
    const notebook = this._notebook;
    if (notebook === null) {
      return;
    }
    const experiment = this._filter.value || null;
    const key = `${notebook}\n${experiment ?? ''}`;
    const requested = performance.now();
    try {
      const { data, changed } = await listRuns({ notebook, experiment, limit: LIMIT });
      if (notebook !== this._notebook) {
        return; // the user moved to another notebook meanwhile
      }
      this._errors.clear();
      if (changed || key !== this._shownKey) {
        this._shownKey = key;
        this._render(data, requested);
      }
    } catch (error) {
      const message = describeError(this._trans, error);
      this._status.textContent = message;
      this._status.classList.add('jp-ship-error');
      this._errors.show(message);
    }
  }

  private _schedule(): void {
    window.clearTimeout(this._timer);
    if (!this.isVisible || this._notebook === null) {
      return;
    }
    let delay = IDLE_DELAY;
    if (Date.now() < this._burstUntil) {
      delay = BURST_DELAYS[Math.min(this._burstStep++, BURST_DELAYS.length - 1)];
    } else if (this._page?.runs.some(run => !run.written)) {
      delay = PENDING_DELAY;
    }
    this._timer = window.setTimeout(() => void this.refresh(), delay);
  }

  private _render(page: IRunPage, requested: number): void {
    const started = performance.now();
    this._page = page;
    const trans = this._trans;
    const now = Date.now();
    const present = new Set(page.runs.map(selectionKey));
    for (const key of this._selected) {
      if (!present.has(key)) {
        this._selected.delete(key);
      }
    }
    const rows = document.createDocumentFragment();
    for (const run of page.runs) {
      const row = renderRow(trans, run, this._selected.has(selectionKey(run)), now);
      if (this._expanded.has(selectionKey(run))) {
        row.classList.add('jp-ship-mod-expanded');
        void this._expand(row, run);
      }
      rows.append(row);
    }
    this._list.replaceChildren(rows);
    const built = performance.now();
    // Reading a size forces style and layout now, so the figure includes them.
    void this._list.offsetHeight;
    const laidOut = performance.now();
    this._list.dataset.count = String(page.runs.length);
    this._list.dataset.buildMs = (built - started).toFixed(1);
    this._list.dataset.layoutMs = (laidOut - built).toFixed(1);
    this._status.classList.remove('jp-ship-error');
    if (page.runs.length === 0) {
      this._status.textContent = trans.__(
        'No runs of this notebook yet. Put %1 on the first line of a cell (or use the Ship button in the cell toolbar) and run it.',
        '%%ship track'
      );
    } else if (page.truncated && page.total !== null) {
      this._status.textContent = trans.__(
        'The newest %1 of %2 runs.',
        page.runs.length,
        page.total
      );
    } else {
      this._status.textContent = trans._n(
        '%1 run, newest first.',
        '%1 runs, newest first.',
        page.runs.length
      );
    }
    const known = new Set(Array.from(this._filter.options, option => option.value));
    if (page.runs.some(run => !known.has(run.experiment))) {
      void this._loadExperiments();
    }
    this._uiLink.hidden = page.ui_url === null;
    this._uiLink.href = page.ui_url ?? '';
    this._updateCompare();
    // The second animation frame starts after the frame that laid out and painted the rows.
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        const now = performance.now();
        this._lastRenderMs = now - started;
        this._list.dataset.renderMs = this._lastRenderMs.toFixed(1);
        this._list.dataset.loadMs = (now - requested).toFixed(1);
      })
    );
  }

  private _onClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const row = target.closest<HTMLLIElement>('li.jp-ship-run');
    if (!row || target.closest('.jp-ship-run-detail')) {
      return;
    }
    const run = this._page?.runs.find(r => r.id === row.dataset.id);
    if (!run) {
      return;
    }
    const key = selectionKey(run);
    if (target instanceof HTMLInputElement && target.type === 'checkbox') {
      if (target.checked) {
        this._selected.add(key);
      } else {
        this._selected.delete(key);
      }
      this._updateCompare();
      return;
    }
    if (this._expanded.has(key)) {
      this._expanded.delete(key);
      row.classList.remove('jp-ship-mod-expanded');
      row.querySelector('.jp-ship-run-detail')?.remove();
    } else {
      this._expanded.add(key);
      row.classList.add('jp-ship-mod-expanded');
      void this._expand(row, run);
    }
  }

  private async _expand(row: HTMLLIElement, run: IRun): Promise<void> {
    const placeholder = document.createElement('div');
    placeholder.className = 'jp-ship-run-detail jp-ship-status';
    placeholder.textContent = this._trans.__('Loading…');
    row.append(placeholder);
    const actions: IRunActions = {
      openSnapshot: r => this._options.openSnapshot(r, this._notebook)
    };
    try {
      const detail = await getRun(run.id, this._notebook);
      placeholder.replaceWith(renderDetail(this._trans, detail, actions));
    } catch (error) {
      placeholder.textContent = describeError(this._trans, error);
      placeholder.classList.add('jp-ship-error');
    }
  }

  private _updateCompare(): void {
    const count = this._selected.size;
    this._compare.disabled = count < 2;
    this._compare.textContent =
      count > 0 ? this._trans.__('Compare (%1)', count) : this._trans.__('Compare');
    this._compare.title =
      count < 2
        ? this._trans.__('Select two or more runs to compare them side by side')
        : this._trans.__('Compare the %1 selected runs side by side', count);
  }

  private _openCompare(): void {
    const runs = (this._page?.runs ?? []).filter(run => this._selected.has(selectionKey(run)));
    if (runs.length >= 2) {
      // Oldest first: the first column is the baseline the others are diffed against.
      runs.sort((a, b) => a.start_time_ms - b.start_time_ms);
      this._options.openCompare(runs.map(run => run.id), this._notebook);
    }
  }

  private async _loadExperiments(): Promise<void> {
    try {
      const { experiments } = await listExperiments(this._notebook);
      const current = this._filter.value;
      this._resetFilter();
      for (const experiment of experiments) {
        this._filter.append(new Option(experiment.name, experiment.name));
      }
      this._filter.value = experiments.some(e => e.name === current) ? current : '';
    } catch (error) {
      this._errors.show(describeError(this._trans, error));
    }
  }

  private _resetFilter(): void {
    this._filter.replaceChildren(new Option(this._trans.__('All experiments'), ''));
  }

  private _showEmpty(): void {
    const name = this._notebook?.split('/').pop() ?? '';
    this._notebookLabel.textContent = name;
    this._notebookLabel.title = this._notebook ?? '';
    this._status.classList.remove('jp-ship-error');
    this._status.textContent =
      this._notebook === null
        ? this._trans.__('Open a notebook to see its runs.')
        : this._trans.__('Loading runs…');
    this._updateCompare();
  }

  private _button(label: string, onClick: () => void): HTMLButtonElement {
    const button = document.createElement('button');
    button.className = 'jp-ship-button';
    button.textContent = label;
    button.addEventListener('click', onClick);
    return button;
  }

  private readonly _trans: TranslationBundle;
  private readonly _options: ExperimentsPanel.IOptions;
  private readonly _notebookLabel: HTMLSpanElement;
  private readonly _filter: HTMLSelectElement;
  private readonly _compare: HTMLButtonElement;
  private readonly _uiLink: HTMLAnchorElement;
  private readonly _status: HTMLParagraphElement;
  private readonly _list: HTMLUListElement;
  private readonly _errors = new ErrorNotifier();
  private readonly _selected = new Set<string>();
  private readonly _expanded = new Set<string>();
  private _notebook: string | null = null;
  private _page: IRunPage | null = null;
  private _shownKey = '';
  private _inFlight: Promise<void> | null = null;
  private _again = false;
  private _timer = 0;
  private _burstUntil = 0;
  private _burstStep = 0;
  private _lastRenderMs = 0;
}

/**
 * The namespace for `ExperimentsPanel` statics.
 */
export namespace ExperimentsPanel {
  /** Options to create the panel. */
  export interface IOptions {
    /** Strings of the kernel_magics domain. */
    trans: TranslationBundle;
    /** Open the comparison of runs (ids in column order) in the main area. */
    openCompare(ids: string[], notebook: string | null): void;
    /** Open a run's notebook snapshot. */
    openSnapshot(run: IRun, notebook: string | null): void;
  }
}
