import { TranslationBundle } from '@jupyterlab/translation';

import { getRun, listExperiments, listRuns } from '../api';
import { el } from '../format';
import { describeError, ErrorNotifier } from '../notify';
import { IRun, IRunPage } from '../tokens';
import { ShipPanel } from './base';
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
export class ExperimentsPanel extends ShipPanel {
  constructor(options: ExperimentsPanel.IOptions) {
    const trans = options.trans;
    super({
      trans,
      id: 'jp-ship-experiments',
      className: 'jp-ship-experiments',
      label: trans.__('Experiments'),
      loading: trans.__('Open a notebook to see its runs.'),
      refreshTitle: trans.__('Reload the runs of this notebook'),
      bodyTag: 'ul',
      bodyClass: 'jp-ship-runs'
    });
    this._options = options;

    this._notebookLabel = el('span', 'jp-ship-notebook-name');
    this._filter = el('select', 'jp-ship-experiment-filter');
    this._filter.title = trans.__('Show the runs of one experiment');
    this._filter.addEventListener('change', () => void this.refresh());
    this._compare = el('button', 'jp-ship-button jp-ship-compare-button', trans.__('Compare'));
    this._compare.addEventListener('click', () => this._openCompare());
    this._uiLink = el('a', 'jp-ship-link jp-ship-mlflow-link', trans.__('MLflow UI'));
    this._uiLink.target = '_blank';
    this._uiLink.rel = 'noopener noreferrer';
    this._uiLink.hidden = true;
    // The toolbar reads: notebook, filter, Compare, Refresh (ShipPanel's), MLflow UI.
    this.actions.prepend(this._notebookLabel, this._filter, this._compare);
    this.actions.append(this._uiLink);

    this.body.addEventListener('click', event => this._onClick(event));
    this._resetFilter();
    this._showEmpty();
  }

  /** A cell of the followed notebook finished: its run, if tracked, is in the spool now. */
  cellExecuted(): void {
    this._burstUntil = Date.now() + BURST_MS;
    this._burstStep = 0;
    void this.refresh();
  }

  /**
   * Milliseconds from building the rows to their first paint, for the last render
   * (also on the list as `data-render-ms`; `data-load-ms` counts from the request).
   */
  get lastRenderMs(): number {
    return this._lastRenderMs;
  }

  /** Forget the last notebook's runs, selection and experiments. */
  protected notebookChanged(): void {
    this._page = null;
    this._shownKey = '';
    this._selected.clear();
    this._expanded.clear();
    this.body.replaceChildren();
    this._resetFilter();
    this._showEmpty();
    if (this.notebook !== null) {
      void this._loadExperiments();
    }
  }

  /**
   * Fetch the runs (a 304 when nothing changed) and re-render only when they changed.
   */
  protected async load(notebook: string | null): Promise<void> {
    if (notebook === null) {
      return;
    }
    const experiment = this._filter.value || null;
    const key = `${notebook}\n${experiment ?? ''}`;
    const requested = performance.now();
    const { data, changed } = await listRuns({ notebook, experiment, limit: LIMIT });
    if (this.isStale(notebook)) {
      return; // the user moved to another notebook meanwhile
    }
    if (changed || key !== this._shownKey) {
      this._shownKey = key;
      this._render(data, requested);
    }
  }

  /** Quick polls right after a cell ran, then every few seconds while runs are pending. */
  protected nextPollDelay(): number {
    if (this.notebook === null) {
      return 0;
    }
    if (Date.now() < this._burstUntil) {
      return BURST_DELAYS[Math.min(this._burstStep++, BURST_DELAYS.length - 1)];
    }
    return this._page?.runs.some(run => !run.written) ? PENDING_DELAY : IDLE_DELAY;
  }

  private _render(page: IRunPage, requested: number): void {
    const started = performance.now();
    this._page = page;
    const trans = this.trans;
    const list = this.body;
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
    list.replaceChildren(rows);
    const built = performance.now();
    // Reading a size forces style and layout now, so the figure includes them.
    void list.offsetHeight;
    const laidOut = performance.now();
    list.dataset.count = String(page.runs.length);
    list.dataset.buildMs = (built - started).toFixed(1);
    list.dataset.layoutMs = (laidOut - built).toFixed(1);
    if (page.runs.length === 0) {
      this.setStatus(
        trans.__(
          'No runs of this notebook yet. Put %1 on the first line of a cell (or use the Ship button in the cell toolbar) and run it.',
          '%%ship track'
        )
      );
    } else if (page.truncated && page.total !== null) {
      this.setStatus(trans.__('The newest %1 of %2 runs.', page.runs.length, page.total));
    } else {
      this.setStatus(
        trans._n('%1 run, newest first.', '%1 runs, newest first.', page.runs.length)
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
        list.dataset.renderMs = this._lastRenderMs.toFixed(1);
        list.dataset.loadMs = (now - requested).toFixed(1);
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
    const placeholder = el('div', 'jp-ship-run-detail jp-ship-status', this.trans.__('Loading…'));
    row.append(placeholder);
    const actions: IRunActions = {
      openSnapshot: r => this._options.openSnapshot(r, this.notebook)
    };
    try {
      const detail = await getRun(run.id, this.notebook);
      placeholder.replaceWith(renderDetail(this.trans, detail, actions));
    } catch (error) {
      placeholder.textContent = describeError(this.trans, error);
      placeholder.classList.add('jp-ship-error');
    }
  }

  private _updateCompare(): void {
    const count = this._selected.size;
    this._compare.disabled = count < 2;
    this._compare.textContent =
      count > 0 ? this.trans.__('Compare (%1)', count) : this.trans.__('Compare');
    this._compare.title =
      count < 2
        ? this.trans.__('Select two or more runs to compare them side by side')
        : this.trans.__('Compare the %1 selected runs side by side', count);
  }

  private _openCompare(): void {
    const runs = (this._page?.runs ?? []).filter(run => this._selected.has(selectionKey(run)));
    if (runs.length >= 2) {
      // Oldest first: the first column is the baseline the others are diffed against.
      runs.sort((a, b) => a.start_time_ms - b.start_time_ms);
      this._options.openCompare(runs.map(run => run.id), this.notebook);
    }
  }

  private async _loadExperiments(): Promise<void> {
    try {
      const { experiments } = await listExperiments(this.notebook);
      const current = this._filter.value;
      this._resetFilter();
      for (const experiment of experiments) {
        this._filter.append(new Option(experiment.name, experiment.name));
      }
      this._filter.value = experiments.some(e => e.name === current) ? current : '';
    } catch (error) {
      this._filterErrors.show(describeError(this.trans, error));
    }
  }

  private _resetFilter(): void {
    this._filter.replaceChildren(new Option(this.trans.__('All experiments'), ''));
  }

  private _showEmpty(): void {
    const notebook = this.notebook;
    this._notebookLabel.textContent = notebook?.split('/').pop() ?? '';
    this._notebookLabel.title = notebook ?? '';
    this.setStatus(
      notebook === null
        ? this.trans.__('Open a notebook to see its runs.')
        : this.trans.__('Loading runs…')
    );
    this._updateCompare();
  }

  private readonly _options: ExperimentsPanel.IOptions;
  private readonly _notebookLabel: HTMLSpanElement;
  private readonly _filter: HTMLSelectElement;
  private readonly _compare: HTMLButtonElement;
  private readonly _uiLink: HTMLAnchorElement;
  // Failures of the experiment list, which is not part of a refresh.
  private readonly _filterErrors = new ErrorNotifier();
  private readonly _selected = new Set<string>();
  private readonly _expanded = new Set<string>();
  private _page: IRunPage | null = null;
  private _shownKey = '';
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
