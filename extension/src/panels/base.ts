import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { el } from '../format';
import { describeError, ErrorNotifier } from '../notify';

/**
 * What every sidebar panel that reads the workspace of the notebook in focus has in
 * common: a toolbar with a Refresh button, a status line, a body; reloading when shown
 * and when the notebook changes; errors in the status line and notified once; and,
 * optionally, polling while visible.
 *
 * A subclass implements `load(notebook)`: fetch, then render unless `isStale(notebook)`;
 * it may override `nextPollDelay()` to poll at a pace of its own.
 */
export abstract class ShipPanel extends Widget {
  constructor(options: ShipPanel.IOptions) {
    super();
    this.trans = options.trans;
    this._pollMs = options.pollMs ?? 0;
    this.id = options.id;
    this.addClass('jp-ship-panel');
    this.addClass(options.className);
    this.title.label = options.label;

    this.actions = el('div', 'jp-ship-toolbar');
    const refresh = el('button', 'jp-ship-button jp-ship-refresh', this.trans.__('Refresh'));
    refresh.title = options.refreshTitle;
    refresh.addEventListener('click', () => void this.refresh());
    this.actions.append(refresh);
    this.status = el('p', 'jp-ship-status', options.loading);
    this.body = el(options.bodyTag ?? 'div', options.bodyClass ?? 'jp-ship-panel-body');
    this.node.append(this.actions, this.status, this.body);
  }

  // (No `toolbar` member: SidePanel.insertWidget takes one for a Toolbar widget.)

  /** The notebook in focus (path relative to Jupyter's root), or null. */
  get notebook(): string | null {
    return this._notebook;
  }

  /** Read the workspace of this notebook (else of Jupyter's root). */
  setNotebook(path: string | null): void {
    if (path !== this._notebook) {
      this._notebook = path;
      this.notebookChanged();
      if (this.isVisible) {
        void this.refresh();
      }
    }
  }

  /**
   * Fetch and render; errors go to the status line and, once each, a notification.
   * Concurrent calls share one load; a call during a load runs once after it (so a
   * poll, a click and a notebook change never race, nor leave two timers).
   */
  refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return this._inFlight;
    }
    window.clearTimeout(this._timer);
    this._inFlight = this._refresh().finally(() => {
      this._inFlight = null;
      if (this._again) {
        this._again = false;
        void this.refresh();
        return;
      }
      const delay = this.isVisible && !this.isDisposed ? this.nextPollDelay() : 0;
      if (delay > 0) {
        this._timer = window.setTimeout(() => void this.refresh(), delay);
      }
    });
    return this._inFlight;
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  /** Fetch for `notebook` and render (unless stale). Throw on failure. */
  protected abstract load(notebook: string | null): Promise<void>;

  /** Milliseconds to the next reload while visible; 0: none. Default: `pollMs`. */
  protected nextPollDelay(): number {
    return this._pollMs;
  }

  /** Called when the followed notebook changes, before the reload. */
  protected notebookChanged(): void {
    // nothing by default
  }

  /** True when the answer for `notebook` arrived after the focus moved on. */
  protected isStale(notebook: string | null): boolean {
    return notebook !== this._notebook || this.isDisposed;
  }

  /** Write the status line; `error` colours it. */
  protected setStatus(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle('jp-ship-error', error);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearTimeout(this._timer);
  }

  private async _refresh(): Promise<void> {
    const notebook = this._notebook;
    try {
      await this.load(notebook);
      if (!this.isStale(notebook)) {
        this._errors.clear();
      }
    } catch (error) {
      if (!this.isStale(notebook)) {
        const message = describeError(this.trans, error);
        this.setStatus(message, true);
        this._errors.show(message);
      }
    }
  }

  protected readonly trans: TranslationBundle;
  protected readonly actions: HTMLElement;
  protected readonly status: HTMLElement;
  protected readonly body: HTMLElement;
  private readonly _errors = new ErrorNotifier();
  private readonly _pollMs: number;
  private _notebook: string | null = null;
  private _timer = 0;
  private _inFlight: Promise<void> | null = null;
  private _again = false;
}

/**
 * The namespace for `ShipPanel` statics.
 */
export namespace ShipPanel {
  /** Options of a panel. */
  export interface IOptions {
    trans: TranslationBundle;
    /** The DOM id, e.g. `jp-ship-drift`. */
    id: string;
    /** The panel's own class, e.g. `jp-ship-drift`. */
    className: string;
    /** The accordion section's title. */
    label: string;
    /** The status line before the first answer. */
    loading: string;
    /** The Refresh button's tooltip. */
    refreshTitle: string;
    /** The body's element; default `div`. */
    bodyTag?: keyof HTMLElementTagNameMap;
    /** The body's class; default `jp-ship-panel-body`. */
    bodyClass?: string;
    /** Reload this often while visible (milliseconds); 0: only when asked. */
    pollMs?: number;
  }
}

/** A "measured" or "estimated" marker next to a figure. */
export function basisTag(trans: TranslationBundle, measured: boolean): HTMLElement {
  const tag = el(
    'span',
    `jp-ship-basis ${measured ? 'jp-ship-mod-measured' : 'jp-ship-mod-estimated'}`,
    measured ? trans.__('measured') : trans.__('estimated')
  );
  tag.title = measured
    ? trans.__('Measured: read from the process or the prediction log.')
    : trans.__('Estimated: measured resources × the price table in .ship/ship.toml.');
  return tag;
}

/** A `<table>` with one head row of `labels` and an empty body (`tBodies[0]`). */
export function headedTable(className: string, labels: string[]): HTMLTableElement {
  const table = el('table', className);
  const head = el('tr', '');
  for (const label of labels) {
    head.append(el('th', '', label));
  }
  table.append(el('thead', ''), el('tbody', ''));
  table.tHead!.append(head);
  return table;
}

/** A table in a box that scrolls sideways when the sidebar is narrow. */
export function scrolling(table: HTMLTableElement): HTMLElement {
  const scroll = el('div', 'jp-ship-table-scroll');
  scroll.append(table);
  return scroll;
}
