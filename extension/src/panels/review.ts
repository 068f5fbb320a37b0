import { TranslationBundle } from '@jupyterlab/translation';

import { getReviewQueue, listServices, writeReviewLabels } from '../api';
import { el, formatPercent, formatTime } from '../format';
import { describeError, ErrorNotifier } from '../notify';
import {
  choices,
  classKeys,
  countsText,
  formatValue,
  IClassKey,
  IReviewWrite,
  keyAction,
  pixelShades,
  reasonText,
  reasonTone,
  ReviewAction,
  ReviewSession,
  SKIP_KEY,
  topProbabilities,
  UNDO_KEY
} from '../review';
import { IReviewItem, IReviewQueue } from '../tokens';
import { headedTable, scrolling, ShipPanel } from './base';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A request id's last characters: ids of one server share their beginning. */
function shortId(id: string): string {
  return id.length > 8 ? `…${id.slice(-8)}` : id;
}

/**
 * The Review panel: a service's human-review queue, one item at a time. The item's
 * inputs (an image when its features are pixels, else a table), the prediction and its
 * top probabilities, why it was routed, and the counts. Keys (focus in the item): a
 * class's key labels it, Enter confirms the prediction, `s` skips (the item comes back
 * at the end), `u` takes the last label back and shows its item again; every action has
 * its button. The next item shows at once; labels are written in order behind it, and
 * the queue is read again after them.
 */
export class ReviewPanel extends ShipPanel {
  constructor(trans: TranslationBundle) {
    super({
      trans,
      id: 'jp-ship-review',
      className: 'jp-ship-review',
      label: trans.__('Review'),
      loading: trans.__('Loading services…'),
      refreshTitle: trans.__('Read the review queue again (new traffic, labels from elsewhere)')
    });
    this._service = el('select', 'jp-ship-select jp-ship-review-service');
    this._service.title = trans.__('Service');
    this._service.setAttribute('aria-label', trans.__('Service'));
    this._service.addEventListener('change', () => {
      this._session.reset();
      this._queue = null;
      void this.refresh();
    });
    this.actions.prepend(this._service);
    // The item keeps its node across items, so the keyboard focus stays in it.
    this._card = el('div', 'jp-ship-review-item');
    this._card.tabIndex = 0;
    this._card.setAttribute('role', 'group');
    this._card.addEventListener('keydown', event => this._onKey(event));
    this._showSaving();
  }

  /** The service shown (its name), once the services are loaded. */
  get service(): string {
    return this._service.value;
  }

  protected notebookChanged(): void {
    this._session.reset();
    this._queue = null;
  }

  protected async load(notebook: string | null): Promise<void> {
    const trans = this.trans;
    const { services } = await listServices(notebook);
    if (this.isStale(notebook)) {
      return;
    }
    const current = this._service.value;
    const names = services.map(s => s.name);
    this._service.replaceChildren(
      ...names.map(name => {
        const option = el('option', '', name);
        option.value = name;
        return option;
      })
    );
    if (!names.length) {
      this._queue = null;
      this.setStatus(
        trans.__('No services yet: build one from a notebook and serve it; its unsure predictions wait here for a label.')
      );
      this.body.replaceChildren();
      return;
    }
    this._service.value = names.includes(current) ? current : names[0];
    const name = this._service.value;
    this._service.title = trans.__('Service: %1', name);
    // The writes done when the read begins: later ones the answer may not show yet.
    const confirmed = this._confirmed;
    const queue = await getReviewQueue(name, notebook);
    if (this.isStale(notebook) || name !== this._service.value) {
      return;
    }
    this._queue = queue;
    this._session.merge(queue, confirmed);
    this._render();
  }

  /** Draw the counts and the item shown, keeping the keyboard focus in the item. */
  private _render(): void {
    const queue = this._queue;
    if (!queue) {
      return;
    }
    const trans = this.trans;
    const focused = this._card.contains(document.activeElement);
    const focusedAction = focused ? (document.activeElement as HTMLElement).dataset.action : undefined;
    const session = this._session;
    this.setStatus(countsText(trans, queue, session.pending, session.labelled));
    const item = session.current;
    this._card.dataset.pending = String(session.pending);
    this._card.setAttribute(
      'aria-label',
      trans.__(
        'Review item. Keys: a class’s key labels it, Enter confirms the model, %1 skips, %2 undoes.',
        SKIP_KEY,
        UNDO_KEY
      )
    );
    const parts: HTMLElement[] = [];
    if (item) {
      this._card.dataset.request = item.request_id;
      this._card.dataset.row = String(item.row);
      this._card.dataset.reason = item.reason;
      parts.push(this._head(item), this._inputs(queue, item), this._prediction(item));
    } else {
      delete this._card.dataset.request;
      delete this._card.dataset.row;
      delete this._card.dataset.reason;
      parts.push(
        el(
          'p',
          'jp-ship-empty jp-ship-review-done',
          !queue.scored
            ? trans.__(
                'No scored predictions yet: start the service and send it requests; the ones its model is unsure of wait here.'
              )
            : queue.routed
              ? trans.__('Nothing waits for a label: every routed prediction has one.')
              : trans.__('Nothing routed yet: the model was sure of every prediction so far, and no input was unusual.')
        )
      );
    }
    parts.push(this._buttons(queue, item));
    this._card.replaceChildren(...parts);
    const help = el(
      'p',
      'jp-ship-note jp-ship-review-help',
      trans.__(
        'Keys, with the item focused: a class’s key labels it · Enter confirms the model · %1 skips · %2 undoes',
        SKIP_KEY,
        UNDO_KEY
      )
    );
    if (this.body.firstChild !== this._card) {
      this.body.replaceChildren(this._card, help);
    } else {
      this.body.lastElementChild?.replaceWith(help);
    }
    if (focused) {
      const again = focusedAction
        ? this._card.querySelector<HTMLElement>(`[data-action="${CSS.escape(focusedAction)}"]:not(:disabled)`)
        : null;
      (again ?? this._card).focus();
    }
  }

  private _head(item: IReviewItem): HTMLElement {
    const trans = this.trans;
    const head = el('div', 'jp-ship-review-head');
    const reason = el('div', `jp-ship-review-reason jp-ship-mod-${reasonTone(item.reason)}`, reasonText(trans, item));
    const id = shortId(item.request_id);
    const when = formatTime(item.time);
    const where =
      item.rows > 1
        ? trans.__('request %1 · row %2 of %3 · v%4 · %5', id, item.row + 1, item.rows, item.version, when)
        : trans.__('request %1 · v%2 · %3', id, item.version, when);
    const meta = el('div', 'jp-ship-note jp-ship-review-meta', where);
    meta.title = trans.__('Request %1, row %2, at %3', item.request_id, item.row, item.time);
    head.append(reason, meta);
    return head;
  }

  /** The inputs: an image of grey cells when the features are pixels, else a table. */
  private _inputs(queue: IReviewQueue, item: IReviewItem): HTMLElement {
    const trans = this.trans;
    if (queue.image && queue.features && queue.features.length === queue.image.height * queue.image.width) {
      const { height, width } = queue.image;
      const shades = pixelShades(item.inputs, queue.features);
      const image = document.createElementNS(SVG_NS, 'svg');
      image.setAttribute('class', 'jp-ship-review-image');
      image.setAttribute('viewBox', `0 0 ${width} ${height}`);
      image.setAttribute('role', 'img');
      const label = trans.__('The input as a %1 × %2 image (darker is larger)', height, width);
      image.setAttribute('aria-label', label);
      const title = document.createElementNS(SVG_NS, 'title');
      title.textContent = label;
      image.append(title);
      shades.forEach((shade, i) => {
        const cell = document.createElementNS(SVG_NS, 'rect');
        cell.setAttribute('x', String(i % width));
        cell.setAttribute('y', String(Math.floor(i / width)));
        cell.setAttribute('width', '1');
        cell.setAttribute('height', '1');
        cell.setAttribute('fill', shade === null ? 'transparent' : `rgb(${shade},${shade},${shade})`);
        image.append(cell);
      });
      const figure = el('div', 'jp-ship-review-figure');
      figure.append(image);
      return figure;
    }
    const table = headedTable('jp-ship-table jp-ship-review-features', [trans.__('Feature'), trans.__('Value')]);
    for (const [feature, value] of Object.entries(item.inputs)) {
      const row = el('tr', '');
      const highlighted = feature === item.scores.ood_feature && item.reason === 'ood';
      row.classList.toggle('jp-ship-mod-unusual', highlighted);
      const cell = el('td', 'jp-ship-num', formatValue(value));
      cell.title = String(value);
      row.append(el('td', '', feature), cell);
      table.tBodies[0].append(row);
    }
    return scrolling(table);
  }

  private _prediction(item: IReviewItem): HTMLElement {
    const trans = this.trans;
    const box = el('div', 'jp-ship-review-prediction');
    const said = el('div', 'jp-ship-review-said');
    said.append(trans.__('Model says'), ' ', el('strong', 'jp-ship-review-predicted', formatValue(item.prediction)));
    box.append(said);
    const top = topProbabilities(item.probabilities, 3);
    if (top.length) {
      const list = el('ol', 'jp-ship-review-probabilities');
      list.setAttribute('aria-label', trans.__('Most probable classes'));
      for (const { label, p } of top) {
        const entry = el('li', '');
        const bar = el('span', 'jp-ship-review-bar');
        bar.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
        const track = el('span', 'jp-ship-review-track');
        track.append(bar);
        entry.append(el('span', 'jp-ship-review-class', label), track, el('span', 'jp-ship-num', formatPercent(p)));
        list.append(entry);
      }
      box.append(list);
    }
    return box;
  }

  /** A button per class (its key beside it), or a value box for a regressor; confirm, skip, undo. */
  private _buttons(queue: IReviewQueue, item: IReviewItem | null): HTMLElement {
    const trans = this.trans;
    const box = el('div', 'jp-ship-review-actions');
    const options = choices(queue, item);
    if (item && options) {
      const classes = el('div', 'jp-ship-review-classes');
      classes.setAttribute('role', 'group');
      classes.setAttribute('aria-label', trans.__('Label with a class'));
      for (const cls of this._keys(options)) {
        const button = el('button', 'jp-ship-button jp-ship-review-label');
        button.dataset.action = `label-${cls.text}`;
        button.dataset.value = cls.text;
        if (cls.key) {
          button.append(el('kbd', 'jp-ship-review-key', cls.key));
          button.setAttribute('aria-keyshortcuts', cls.key);
        }
        // Digit classes are their own keys: the key alone says both.
        if (cls.key !== cls.text.toLowerCase()) {
          button.append(' ', el('span', 'jp-ship-review-class-name', cls.text));
        }
        button.setAttribute('aria-label', trans.__('Label %1', cls.text));
        button.title = cls.key ? trans.__('Label %1 (key %2)', cls.text, cls.key) : trans.__('Label %1', cls.text);
        button.classList.toggle('jp-ship-mod-predicted', String(item.prediction) === cls.text);
        button.addEventListener('click', () => this._act({ kind: 'label', value: cls.value }));
        classes.append(button);
      }
      box.append(classes);
    } else if (item) {
      const form = el('form', 'jp-ship-review-value');
      const input = el('input', 'jp-ship-review-input');
      input.type = 'number';
      input.step = 'any';
      input.required = true;
      input.setAttribute('aria-label', trans.__('True value'));
      input.placeholder = trans.__('true value');
      const submit = el('button', 'jp-ship-button', trans.__('Label'));
      submit.type = 'submit';
      submit.dataset.action = 'label-value';
      form.append(input, submit);
      form.addEventListener('submit', event => {
        event.preventDefault();
        if (input.value !== '' && Number.isFinite(Number(input.value))) {
          this._act({ kind: 'label', value: Number(input.value) });
        }
      });
      box.append(form);
    }
    const row = el('div', 'jp-ship-review-controls');
    const confirm = el('button', 'jp-ship-button jp-ship-review-confirm');
    confirm.dataset.action = 'confirm';
    confirm.append(
      item ? trans.__('Confirm %1', formatValue(item.prediction)) : trans.__('Confirm'),
      ' ',
      el('kbd', 'jp-ship-review-key', '⏎')
    );
    confirm.title = trans.__('The model is right: label it with its prediction (Enter)');
    confirm.setAttribute('aria-keyshortcuts', 'Enter');
    confirm.disabled = !item || item.prediction === null || item.prediction === undefined;
    confirm.addEventListener('click', () => this._act({ kind: 'confirm' }));
    const skip = el('button', 'jp-ship-button jp-ship-review-skip');
    skip.dataset.action = 'skip';
    skip.append(trans.__('Skip'), ' ', el('kbd', 'jp-ship-review-key', SKIP_KEY));
    skip.title = trans.__('Not now: the item comes back at the end (%1)', SKIP_KEY);
    skip.setAttribute('aria-keyshortcuts', SKIP_KEY);
    skip.disabled = !item;
    skip.addEventListener('click', () => this._act({ kind: 'skip' }));
    const undo = el('button', 'jp-ship-button jp-ship-review-undo');
    undo.dataset.action = 'undo';
    undo.append(trans.__('Undo'), ' ', el('kbd', 'jp-ship-review-key', UNDO_KEY));
    const last = this._session.lastLabel;
    undo.title = last
      ? trans.__(
          'Take back the label %1 of request %2 and show it again (%3)',
          formatValue(last.value),
          shortId(last.item.request_id),
          UNDO_KEY
        )
      : trans.__('Nothing to undo yet');
    undo.setAttribute('aria-keyshortcuts', UNDO_KEY);
    undo.disabled = !last;
    undo.addEventListener('click', () => this._act({ kind: 'undo' }));
    row.append(confirm, skip, undo);
    box.append(row);
    return box;
  }

  private _keys(classes: unknown[]): IClassKey[] {
    const id = JSON.stringify(classes);
    if (this._keysOf !== id) {
      this._keysOf = id;
      this._classKeys = classKeys(classes);
    }
    return this._classKeys;
  }

  private _onKey(event: KeyboardEvent): void {
    if (event.ctrlKey || event.metaKey || event.altKey || !this._queue) {
      return;
    }
    const target = event.target as HTMLElement;
    if (['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName)) {
      return; // the value box of a regressor takes its own keys
    }
    if (event.key === 'Enter' && target !== this._card) {
      return; // a focused button: Enter presses it
    }
    const options = choices(this._queue, this._session.current);
    const action = keyAction(event.key, options ? this._keys(options) : []);
    if (action) {
      event.preventDefault();
      event.stopPropagation();
      this._act(action);
    }
  }

  /** Do what a key or a button asks: at once here, the write behind it. */
  private _act(action: ReviewAction): void {
    const session = this._session;
    const item = session.current;
    let write: IReviewWrite | null = null;
    switch (action.kind) {
      case 'skip':
        session.skip();
        break;
      case 'undo':
        write = session.undo();
        break;
      case 'confirm':
        write = item && item.prediction !== null && item.prediction !== undefined
          ? session.label(item.prediction)
          : null;
        break;
      case 'label':
        write = session.label(action.value);
        break;
    }
    this._render();
    if (write) {
      this._send(write);
    }
  }

  /**
   * Write labels one after another, in the order made (an undo after its label); read the
   * queue again after the last. The item's `data-saving` counts the writes not yet done.
   */
  private _send(write: IReviewWrite): void {
    const name = this._service.value;
    const notebook = this.notebook;
    this._saving += 1;
    this._showSaving();
    this._writes = this._writes.then(async () => {
      try {
        await writeReviewLabels(name, [write.label], notebook);
      } catch (error) {
        this._session.failed(write.seq);
        this._writeErrors.show(describeError(this.trans, error));
      } finally {
        this._confirmed = Math.max(this._confirmed, write.seq);
        this._saving -= 1;
        this._showSaving();
      }
      // Not awaited: the next write need not wait for the read.
      if (this._saving === 0 && !this.isDisposed) {
        void this.refresh();
      }
    });
  }

  private _showSaving(): void {
    this._card.dataset.saving = String(this._saving);
    this._card.setAttribute('aria-busy', String(this._saving > 0));
  }

  private readonly _service: HTMLSelectElement;
  private readonly _card: HTMLElement;
  private readonly _session = new ReviewSession();
  private readonly _writeErrors = new ErrorNotifier();
  private _queue: IReviewQueue | null = null;
  private _keysOf = '';
  private _classKeys: IClassKey[] = [];
  private _writes: Promise<void> = Promise.resolve();
  private _confirmed = 0;
  private _saving = 0;
}
