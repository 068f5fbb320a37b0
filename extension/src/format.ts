/**
 * How the panels write numbers, durations, times, sizes, money and fingerprints:
 * compact, the same in every panel, and "—" for what is missing or not a number.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IDataInput, IRunCost } from './tokens';

/** What a missing or unreadable figure shows. */
const NONE = '—';

/** A metric or param value: up to 4 significant digits, integers as they are. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) {
    return NONE;
  }
  // A diverged loss is NaN: the user should see it, not a blank.
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? '∞' : '-∞';
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
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return NONE;
  }
  if (seconds < 0) {
    return `-${formatSeconds(-seconds)}`;
  }
  // Each unit is chosen after rounding: 0.9996 s is "1 s", not "1000 ms", and 119.6 s
  // is "2 min 0 s", not "1 min 60 s".
  const ms = Math.round(seconds * 1000);
  if (ms < 1000) {
    return `${ms} ms`;
  }
  const shown = Number(seconds.toPrecision(3));
  if (shown < 60) {
    return `${shown} s`;
  }
  const total = Math.round(seconds);
  if (total < 3600) {
    return `${Math.floor(total / 60)} min ${total % 60} s`;
  }
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Milliseconds as "0.42 ms". */
export function formatMs(ms: number | null): string {
  return ms === null ? NONE : `${formatNumber(ms)} ms`;
}

/** A window's length as "1 h", "15 min", "7 d"; other lengths as `formatSeconds`. */
export function formatWindow(seconds: number): string {
  if (seconds >= 86400 && seconds % 86400 === 0) {
    return `${seconds / 86400} d`;
  }
  if (seconds >= 3600 && seconds % 3600 === 0) {
    return `${seconds / 3600} h`;
  }
  if (seconds >= 60 && seconds % 60 === 0) {
    return `${seconds / 60} min`;
  }
  return formatSeconds(seconds);
}

/** A run's start as "just now", "5 min ago", "3 h ago", else its date. */
export function formatWhen(trans: TranslationBundle, ms: number, now = Date.now()): string {
  if (!Number.isFinite(ms)) {
    return NONE;
  }
  // A start a little in the future (another machine's clock) is "just now".
  const seconds = Math.max(0, (now - ms) / 1000);
  if (seconds < 45) {
    return trans.__('just now');
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return trans.__('%1 min ago', minutes);
  }
  const hours = Math.round(seconds / 3600);
  if (hours < 24) {
    return trans.__('%1 h ago', hours);
  }
  return new Date(ms).toLocaleDateString();
}

/**
 * A time of day as "14:05" when it is on `now`'s day, else "3 May 14:05" (in the
 * browser's locale and time zone unless `locales` says otherwise).
 */
export function formatTime(
  iso: string | null,
  now: Date = new Date(),
  locales: string | string[] = []
): string {
  const when = iso ? new Date(iso) : null;
  if (!when || Number.isNaN(when.getTime())) {
    return NONE;
  }
  const time = when.toLocaleTimeString(locales, { hour: '2-digit', minute: '2-digit' });
  if (now.toDateString() === when.toDateString()) {
    return time;
  }
  return `${when.toLocaleDateString(locales, { day: 'numeric', month: 'short' })} ${time}`;
}

/** A share (0 to 1) as a percentage with 3 significant digits: "12.3 %". */
export function formatPercent(share: number): string {
  return Number.isFinite(share) ? `${Number((share * 100).toPrecision(3))} %` : NONE;
}

/** Bytes as "12.3 kB", "4.1 MB" (decimal units). */
export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) {
    return NONE;
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  // The unit is chosen after rounding: 999,999 B is "1 MB", not "1000 kB".
  while (Math.abs(Number(value.toPrecision(3))) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : Number(value.toPrecision(3))} ${units[unit]}`;
}

/** An amount of money: cents from 0.01 up, two significant digits below ("0.000027"). */
export function formatAmount(amount: number): string {
  if (!Number.isFinite(amount)) {
    return NONE;
  }
  return Math.abs(amount) >= 0.01 ? amount.toFixed(2) : String(Number(amount.toPrecision(2)));
}

/** Money as "≈ 0.000027 USD", for a figure marked estimated next to it. */
export function formatApproxMoney(amount: number, currency: string | null): string {
  return `≈ ${formatAmount(amount)}${currency ? ` ${currency}` : ''}`;
}

/** Money: always an estimate, in the currency of the price table. */
export function formatMoney(
  trans: TranslationBundle,
  amount: number | null,
  currency: string | null
): string {
  if (amount === null) {
    return NONE;
  }
  return trans.__('%1 (estimate)', formatApproxMoney(amount, currency));
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

/** `key=value` pairs, the first `limit`, and "+n" for the rest, for one line. */
export function formatPairs(
  values: { [key: string]: string | number | null },
  limit: number
): string {
  const keys = Object.keys(values);
  const shown = keys.slice(0, Math.max(0, limit)).map(key => {
    const value = values[key];
    return `${key}=${typeof value === 'number' || value === null ? formatNumber(value) : value}`;
  });
  if (keys.length > shown.length) {
    shown.push(`+${keys.length - shown.length}`);
  }
  return shown.join('  ');
}

/** `text` cut to at most `length` characters, the last one an ellipsis when cut. */
export function truncate(text: string, length: number): string {
  if (text.length <= length) {
    return text;
  }
  return length < 1 ? '' : `${text.slice(0, length - 1)}…`;
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
