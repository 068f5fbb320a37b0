/**
 * The Review panel's logic, apart from its DOM: which key labels which class, why an
 * item was routed in words, an image's grey levels, and the session of one reviewer
 * (the item shown, skipped items at the end, labels that can be undone, and the
 * queue re-read from the server without losing either). Pure, so tested without a
 * browser; panels/review.ts draws it.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { formatNumber } from './format';
import { IReviewItem, IReviewLabel, IReviewQueue } from './tokens';

/** Skips the item shown: it comes back at the end. */
export const SKIP_KEY = 's';
/** Takes the last label back and shows its item again. */
export const UNDO_KEY = 'u';
/** Keys a class may have, in the order they are handed out. */
const KEY_POOL = '1234567890abcdefghijklmnopqrstuvwxyz';
const RESERVED = new Set([SKIP_KEY, UNDO_KEY]);

/** An item's identity: its request and row. */
export function itemKey(item: { request_id: string; row: number }): string {
  return `${item.request_id}/${item.row}`;
}

/** A class as a button shows it, with its key (null: more classes than keys). */
export interface IClassKey {
  value: unknown;
  text: string;
  key: string | null;
}

function usable(key: string, taken: Set<string>): boolean {
  return /^[0-9a-z]$/.test(key) && !RESERVED.has(key) && !taken.has(key);
}

/**
 * The key of each class: a class named by one digit or letter has that key (digits
 * 0–9 are keys 0–9), another the first free letter or digit of its name ("cat": c),
 * the rest the first free of 1–9, 0, a–z. `s` and `u` are never a class's key.
 */
export function classKeys(classes: readonly unknown[]): IClassKey[] {
  const texts = classes.map(value => String(value));
  const keys: (string | null)[] = texts.map(() => null);
  const taken = new Set<string>();
  const assign = (i: number, key: string): void => {
    keys[i] = key;
    taken.add(key);
  };
  texts.forEach((text, i) => {
    const key = text.toLowerCase();
    if (key.length === 1 && usable(key, taken)) {
      assign(i, key);
    }
  });
  texts.forEach((text, i) => {
    if (keys[i] === null) {
      const key = Array.from(text.toLowerCase()).find(c => usable(c, taken));
      if (key !== undefined) {
        assign(i, key);
      }
    }
  });
  texts.forEach((_, i) => {
    if (keys[i] === null) {
      const key = Array.from(KEY_POOL).find(c => usable(c, taken));
      if (key !== undefined) {
        assign(i, key);
      }
    }
  });
  return classes.map((value, i) => ({ value, text: texts[i], key: keys[i] }));
}

/**
 * The classes a person picks from: the model's, else the ones the item's probabilities
 * name (a classifier whose schema lists no labels); null for a regressor.
 */
export function choices(queue: IReviewQueue, item: IReviewItem | null): unknown[] | null {
  if (queue.classes) {
    return queue.classes;
  }
  return item?.probabilities ? Object.keys(item.probabilities) : null;
}

/** What a key press asks for. */
export type ReviewAction =
  | { kind: 'label'; value: unknown }
  | { kind: 'confirm' }
  | { kind: 'skip' }
  | { kind: 'undo' };

/** The action of a key (`KeyboardEvent.key`), or null when the key means nothing here. */
export function keyAction(key: string, classes: readonly IClassKey[]): ReviewAction | null {
  if (key === 'Enter') {
    return { kind: 'confirm' };
  }
  const lower = key.length === 1 ? key.toLowerCase() : '';
  if (lower === SKIP_KEY) {
    return { kind: 'skip' };
  }
  if (lower === UNDO_KEY) {
    return { kind: 'undo' };
  }
  const found = lower ? classes.find(c => c.key === lower) : undefined;
  return found ? { kind: 'label', value: found.value } : null;
}

/** A score as the reason writes it: two decimals. */
function score(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '—' : value.toFixed(2);
}

/** Why an item was routed, in words: "model unsure (confidence 0.41)". */
export function reasonText(trans: TranslationBundle, item: IReviewItem): string {
  const scores = item.scores;
  switch (item.reason) {
    case 'confidence':
      return trans.__('model unsure (confidence %1)', score(scores.confidence));
    case 'margin': {
      const [first, second] = topProbabilities(item.probabilities, 2);
      return first && second
        ? trans.__('close call between %1 and %2 (margin %3)', first.label, second.label, score(scores.margin))
        : trans.__('close call (margin %1)', score(scores.margin));
    }
    case 'entropy':
      return trans.__('model unsure (entropy %1)', score(scores.entropy));
    case 'ood':
      return scores.ood_feature
        ? trans.__('unusual input: %1 far outside training', scores.ood_feature)
        : trans.__('unusual input: far outside training');
    case 'audit':
      return trans.__('random audit');
  }
  return String(item.reason);
}

/** How a reason reads at a glance. */
export function reasonTone(reason: string): 'warn' | 'info' | 'plain' {
  return reason === 'ood' ? 'warn' : reason === 'audit' ? 'plain' : 'info';
}

/** The `n` most probable classes, most probable first. */
export function topProbabilities(
  probabilities: { [label: string]: number } | null,
  n = 3
): { label: string; p: number }[] {
  if (!probabilities) {
    return [];
  }
  return Object.entries(probabilities)
    .filter(([, p]) => typeof p === 'number' && Number.isFinite(p))
    .map(([label, p]) => ({ label, p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, n);
}

/**
 * The grey level (0 black … 255 white) of each pixel, `features` in row-major order:
 * darker is larger, from the smaller of 0 and the image's least value up to its
 * greatest. A value that is missing or not a number: null.
 */
export function pixelShades(inputs: { [feature: string]: unknown }, features: readonly string[]): (number | null)[] {
  const values = features.map(f => {
    const v = inputs[f];
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  });
  const known = values.filter((v): v is number => v !== null);
  const low = Math.min(0, ...known);
  const high = known.length ? Math.max(...known) : 0;
  return values.map(v => (v === null ? null : high > low ? Math.round(255 * (1 - (v - low) / (high - low))) : 255));
}

/** A feature's value or a prediction as a table cell shows it. */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    return formatNumber(value);
  }
  if (value === null || value === undefined) {
    return '—';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The queue's counts in a line: waiting, labelled, today's routed against the budget. */
export function countsText(
  trans: TranslationBundle,
  queue: IReviewQueue,
  pending: number,
  labelled: number
): string {
  return trans.__(
    '%1 waiting · %2 labelled (last %3) · today %4 routed of a budget of %5',
    pending,
    labelled,
    queue.settings.since,
    queue.today.routed,
    queue.today.budget
  );
}

/** A label to write, numbered in the order the session made it. */
export interface IReviewWrite {
  seq: number;
  label: IReviewLabel;
}

/** A label this session made that can be taken back. */
export interface IUndoEntry {
  item: IReviewItem;
  value: unknown;
  /** The row's label before: what undo writes. */
  previous: unknown;
}

/** What this session did to an item that the server may not show yet. */
interface IOverride {
  seq: number;
  state: 'labelled' | 'pending';
  item: IReviewItem;
}

/**
 * One reviewer's pass over a queue. The first item of `order` is shown; skipped items
 * go to the end (after anything new); labels and undos are numbered writes. A queue
 * read from the server is merged in: a write the server may not have seen yet (its
 * number above `confirmed`, the last write done when the read began) still counts.
 */
export class ReviewSession {
  /** The item shown, or null when nothing waits. */
  get current(): IReviewItem | null {
    return this._order.length ? (this._items.get(this._order[0]) ?? null) : null;
  }

  /** Items waiting, the one shown included. */
  get pending(): number {
    return this._order.length;
  }

  /** The queue's labelled count with this session's writes the server may not show yet. */
  get labelled(): number {
    return this._labelled;
  }

  /** The label undo would take back, or null. */
  get lastLabel(): IUndoEntry | null {
    return this._undo.length ? this._undo[this._undo.length - 1] : null;
  }

  /** The keys of the waiting items in the order they will show. */
  get order(): readonly string[] {
    return this._order;
  }

  /** Forget the queue, the skips and the undo history (another service, another workspace). */
  reset(): void {
    this._items.clear();
    this._order = [];
    this._skipped = [];
    this._undo = [];
    this._overrides.clear();
    this._serverLabelled = 0;
    this._serverKeys = new Set();
    this._count();
  }

  /** Merge a queue read from the server when `confirmed` was the last write done. */
  merge(queue: IReviewQueue, confirmed: number): void {
    for (const [key, override] of this._overrides) {
      if (override.seq <= confirmed) {
        this._overrides.delete(key);
      }
    }
    this._items.clear();
    const serverOrder: string[] = [];
    for (const item of queue.items) {
      const key = itemKey(item);
      this._items.set(key, item);
      serverOrder.push(key);
    }
    this._serverKeys = new Set(serverOrder);
    this._serverLabelled = queue.labelled;
    for (const [key, override] of this._overrides) {
      if (override.state === 'labelled') {
        this._items.delete(key);
      } else if (!this._items.has(key)) {
        this._items.set(key, override.item);
      }
    }
    const skipped = new Set(this._skipped);
    const kept = this._order.filter(key => this._items.has(key) && !skipped.has(key));
    const known = new Set(this._order);
    const added = [...serverOrder, ...this._overrides.keys()].filter(
      key => this._items.has(key) && !known.has(key) && !skipped.has(key)
    );
    this._skipped = this._skipped.filter(key => this._items.has(key));
    this._order = [...new Set([...kept, ...added]), ...this._skipped];
    this._count();
  }

  /** Move the item shown to the end. */
  skip(): void {
    const key = this._order.shift();
    if (key === undefined) {
      return;
    }
    this._skipped = [...this._skipped.filter(k => k !== key), key];
    this._order.push(key);
  }

  /** Label the item shown `value`; the write to send, or null when nothing is shown. */
  label(value: unknown): IReviewWrite | null {
    const item = this.current;
    if (!item) {
      return null;
    }
    const key = itemKey(item);
    this._order.shift();
    this._skipped = this._skipped.filter(k => k !== key);
    const previous = item.label ?? null;
    this._undo.push({ item, value, previous });
    return this._write(item, 'labelled', value);
  }

  /** Take the last label back and show its item first; the write, or null when none. */
  undo(): IReviewWrite | null {
    const entry = this._undo.pop();
    if (!entry) {
      return null;
    }
    const item = { ...entry.item, label: entry.previous };
    const key = itemKey(item);
    this._items.set(key, item);
    this._skipped = this._skipped.filter(k => k !== key);
    this._order = [key, ...this._order.filter(k => k !== key)];
    return this._write(item, 'pending', entry.previous);
  }

  /** A write failed: the server's queue decides that item again at the next merge. */
  failed(seq: number): void {
    for (const [key, override] of this._overrides) {
      if (override.seq === seq) {
        this._overrides.delete(key);
      }
    }
  }

  private _write(item: IReviewItem, state: IOverride['state'], value: unknown): IReviewWrite {
    const seq = ++this._seq;
    this._overrides.set(itemKey(item), { seq, state, item });
    this._count();
    return { seq, label: { request_id: item.request_id, row: item.row, value } };
  }

  /** The server's labelled count, corrected by the overrides it may not show yet. */
  private _count(): void {
    let labelled = this._serverLabelled;
    for (const [key, override] of this._overrides) {
      const pendingThere = this._serverKeys.has(key);
      if (override.state === 'labelled' && pendingThere) {
        labelled += 1;
      } else if (override.state === 'pending' && !pendingThere) {
        labelled -= 1;
      }
    }
    this._labelled = Math.max(0, labelled);
  }

  private readonly _items = new Map<string, IReviewItem>();
  private readonly _overrides = new Map<string, IOverride>();
  private _order: string[] = [];
  private _skipped: string[] = [];
  private _undo: IUndoEntry[] = [];
  private _serverKeys = new Set<string>();
  private _serverLabelled = 0;
  private _labelled = 0;
  // Never reset: a write of a session before a reset is still numbered below the next.
  private _seq = 0;
}
