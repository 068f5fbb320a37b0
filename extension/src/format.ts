/**
 * How the panels write numbers, times, money and fingerprints: compact, and the
 * same in the run list and the comparison.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IDataInput, IRunCost } from './tokens';

/** A metric or param value: up to 4 significant digits, integers as they are. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return '—';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e9) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(2);
  }
  return String(Number(value.toPrecision(4)));
}

/** Seconds as "850 ms", "2.5 s", "3 min 20 s", "1 h 5 min". */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '—';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${Number(seconds.toPrecision(3))} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A run's start as "5 min ago", else a date. */
export function formatWhen(trans: TranslationBundle, ms: number, now = Date.now()): string {
  const seconds = Math.max(0, (now - ms) / 1000);
  if (seconds < 45) {
    return trans.__('just now');
  }
  if (seconds < 3600) {
    return trans.__('%1 min ago', Math.round(seconds / 60));
  }
  if (seconds < 86400) {
    return trans.__('%1 h ago', Math.round(seconds / 3600));
  }
  return new Date(ms).toLocaleDateString();
}

/** Money: always an estimate, in the currency of the price table. */
export function formatMoney(
  trans: TranslationBundle,
  amount: number | null,
  currency: string | null
): string {
  if (amount === null) {
    return '—';
  }
  const digits = amount >= 0.01 ? amount.toFixed(2) : Number(amount.toPrecision(2)).toString();
  return trans.__('≈ %1 %2 (estimate)', digits, currency ?? '');
}

/** A run's cost in one line: wall time and money. */
export function formatCost(trans: TranslationBundle, cost: IRunCost | null): string {
  if (!cost) {
    return '';
  }
  const parts = [formatSeconds(cost.wall_s)];
  if (cost.amount !== null) {
    parts.push(formatMoney(trans, cost.amount, cost.currency));
  }
  return parts.join(' · ');
}

/** A fingerprint as "df 1f2e3d4c [1000×2]". */
export function formatData(data: IDataInput): string {
  const shape = data.shape ? ` [${data.shape.join('×')}]` : '';
  return `${data.name} ${data.digest.slice(0, 8)}${shape}`;
}

/** `key=value` pairs, the first few, for one line. */
export function formatPairs(
  values: { [key: string]: string | number | null },
  limit: number
): string {
  const keys = Object.keys(values);
  const shown = keys.slice(0, limit).map(key => {
    const value = values[key];
    return `${key}=${typeof value === 'number' || value === null ? formatNumber(value) : value}`;
  });
  const more = keys.length - limit;
  return shown.join('  ') + (more > 0 ? `  +${more}` : '');
}

/** An element with a class and, optionally, its text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}
