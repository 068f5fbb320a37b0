import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  formatAmount,
  formatApproxMoney,
  formatBytes,
  formatCost,
  formatData,
  formatMoney,
  formatMs,
  formatNumber,
  formatPairs,
  formatPercent,
  formatSeconds,
  formatTime,
  formatWhen,
  formatWindow,
  truncate
} from '../src/format';
import { IRunCost } from '../src/tokens';
import { trans } from './trans';

/** Each input and what it must read as. */
function table<T>(format: (value: T) => string, cases: [T, string][]): void {
  for (const [value, expected] of cases) {
    assert.equal(format(value), expected, `${String(value)}`);
  }
}

describe('formatNumber', () => {
  it('writes missing values as a dash', () => {
    table(formatNumber, [
      [null, '—'],
      [undefined, '—']
    ]);
  });

  it('writes integers below a billion as they are, zero and negatives included', () => {
    table(formatNumber, [
      [0, '0'],
      [-0, '0'],
      [42, '42'],
      [-7, '-7'],
      [123456789, '123456789'],
      [999999999, '999999999']
    ]);
  });

  it('keeps 4 significant digits of fractions', () => {
    table(formatNumber, [
      [0.123456, '0.1235'],
      [-2.5, '-2.5'],
      [1234.5678, '1235'],
      [0.001, '0.001'],
      [0.1 + 0.2, '0.3']
    ]);
  });

  it('switches to 3-digit exponents for the tiny and the huge', () => {
    table(formatNumber, [
      [0.0001234, '1.23e-4'],
      [-0.00009, '-9.00e-5'],
      [1234567.8, '1.23e+6'],
      [1e9, '1.00e+9'],
      [12345678901, '1.23e+10'],
      [Number.MAX_VALUE, '1.80e+308'],
      [Number.MIN_VALUE, '4.94e-324']
    ]);
  });

  it('shows NaN and infinities rather than hiding them', () => {
    table(formatNumber, [
      [NaN, 'NaN'],
      [Infinity, '∞'],
      [-Infinity, '-∞']
    ]);
  });
});

describe('formatSeconds', () => {
  it('writes missing and non-finite durations as a dash', () => {
    table(formatSeconds, [
      [null, '—'],
      [undefined, '—'],
      [NaN, '—'],
      [Infinity, '—']
    ]);
  });

  it('writes durations under a second in milliseconds', () => {
    table(formatSeconds, [
      [0, '0 ms'],
      [0.0004, '0 ms'],
      [0.85, '850 ms'],
      [0.9994, '999 ms']
    ]);
  });

  it('writes durations under a minute in seconds, 3 significant digits', () => {
    table(formatSeconds, [
      [0.9996, '1 s'],
      [1, '1 s'],
      [2.5, '2.5 s'],
      [12.345, '12.3 s'],
      [59.94, '59.9 s']
    ]);
  });

  it('writes minutes and seconds under an hour, never "60 s"', () => {
    table(formatSeconds, [
      [59.96, '1 min 0 s'],
      [60, '1 min 0 s'],
      [119.6, '2 min 0 s'],
      [200, '3 min 20 s'],
      [3599.4, '59 min 59 s']
    ]);
  });

  it('writes hours and minutes from an hour up, never "60 min"', () => {
    table(formatSeconds, [
      [3599.6, '1 h 0 min'],
      [3600, '1 h 0 min'],
      [3900, '1 h 5 min'],
      [7199.9, '2 h 0 min'],
      [90000, '25 h 0 min'],
      [1e9, '277777 h 47 min']
    ]);
  });

  it('keeps the sign of a negative duration', () => {
    table(formatSeconds, [
      [-2.5, '-2.5 s'],
      [-0.25, '-250 ms']
    ]);
  });
});

describe('formatMs', () => {
  it('writes milliseconds with formatNumber', () => {
    table(formatMs, [
      [null, '—'],
      [0, '0 ms'],
      [0.42, '0.42 ms'],
      [12.3456, '12.35 ms'],
      [2e6, '2000000 ms']
    ]);
  });
});

describe('formatWindow', () => {
  it('writes whole days, hours and minutes in that unit', () => {
    table(formatWindow, [
      [86400, '1 d'],
      [604800, '7 d'],
      [3600, '1 h'],
      [21600, '6 h'],
      [900, '15 min'],
      [60, '1 min']
    ]);
  });

  it('falls back to formatSeconds for other lengths', () => {
    table(formatWindow, [
      [5400, '90 min'],
      [90000, '25 h'],
      [90, '1 min 30 s'],
      [30, '30 s'],
      [0, '0 ms'],
      [NaN, '—']
    ]);
  });
});

describe('formatWhen', () => {
  const now = Date.UTC(2026, 4, 3, 12, 0, 0);
  const ago = (seconds: number): string => formatWhen(trans, now - seconds * 1000, now);

  it('says "just now" for the last 45 seconds and for starts in the future', () => {
    assert.equal(ago(0), 'just now');
    assert.equal(ago(44), 'just now');
    assert.equal(ago(-120), 'just now');
  });

  it('counts minutes, then hours, rounding into the next unit', () => {
    assert.equal(ago(45), '1 min ago');
    assert.equal(ago(29 * 60 + 29), '29 min ago');
    assert.equal(ago(59 * 60 + 40), '1 h ago');
    assert.equal(ago(3 * 3600), '3 h ago');
    assert.equal(ago(23 * 3600 + 20 * 60), '23 h ago');
  });

  it('gives the date from a day on', () => {
    const ms = now - 23.6 * 3600 * 1000;
    assert.equal(formatWhen(trans, ms, now), new Date(ms).toLocaleDateString());
    assert.equal(ago(3 * 86400), new Date(now - 3 * 86400 * 1000).toLocaleDateString());
  });

  it('writes a start that is not a number as a dash', () => {
    assert.equal(formatWhen(trans, NaN, now), '—');
  });
});

describe('formatTime', () => {
  // Local times: the expectations hold in any time zone.
  const at = new Date(2026, 4, 3, 14, 5).toISOString();
  const sameDay = new Date(2026, 4, 3, 23, 59);
  const nextDay = new Date(2026, 4, 4, 0, 1);

  it('writes only the time on the same day', () => {
    assert.equal(formatTime(at, sameDay, 'en-GB'), '14:05');
  });

  it('adds day and month on another day', () => {
    assert.equal(formatTime(at, nextDay, 'en-GB'), '3 May 14:05');
  });

  it('follows the locale', () => {
    assert.match(formatTime(at, sameDay, 'en-US'), /^02:05\sPM$/u);
  });

  it('writes a missing or unreadable time as a dash', () => {
    assert.equal(formatTime(null, sameDay), '—');
    assert.equal(formatTime('', sameDay), '—');
    assert.equal(formatTime('not a time', sameDay), '—');
  });
});

describe('formatPercent', () => {
  it('writes a share as a percentage with 3 significant digits', () => {
    table(formatPercent, [
      [0, '0 %'],
      [1, '100 %'],
      [0.5, '50 %'],
      [0.123456, '12.3 %'],
      [0.00001, '0.001 %'],
      [-0.25, '-25 %'],
      [12.5, '1250 %'],
      [NaN, '—']
    ]);
  });
});

describe('formatBytes', () => {
  it('uses decimal units, 3 significant digits above bytes', () => {
    table(formatBytes, [
      [null, '—'],
      [0, '0 B'],
      [1.5, '1.5 B'],
      [999, '999 B'],
      [1000, '1 kB'],
      [12345, '12.3 kB'],
      [4.1e6, '4.1 MB'],
      [3e9, '3 GB'],
      [5e12, '5 TB'],
      [7e15, '7000 TB']
    ]);
  });

  it('picks the unit after rounding', () => {
    table(formatBytes, [
      [999_499, '999 kB'],
      [999_999, '1 MB'],
      [999_999_999, '1 GB']
    ]);
  });

  it('handles negative and non-finite sizes', () => {
    table(formatBytes, [
      [-2048, '-2.05 kB'],
      [NaN, '—'],
      [Infinity, '—']
    ]);
  });
});

describe('money', () => {
  it('writes cents from 0.01 up and 2 significant digits below', () => {
    table(formatAmount, [
      [0, '0'],
      [1234.5, '1234.50'],
      [0.01, '0.01'],
      [0.009, '0.009'],
      [0.0000271, '0.000027'],
      [1e-7, '1e-7'],
      [-3, '-3.00'],
      [NaN, '—']
    ]);
  });

  it('marks amounts as approximate, with the currency when there is one', () => {
    assert.equal(formatApproxMoney(0.5, 'USD'), '≈ 0.50 USD');
    assert.equal(formatApproxMoney(0.5, null), '≈ 0.50');
    assert.equal(formatApproxMoney(0.5, ''), '≈ 0.50');
  });

  it('says an amount is an estimate, and a missing one is a dash', () => {
    assert.equal(formatMoney(trans, null, 'USD'), '—');
    assert.equal(formatMoney(trans, 1.234, 'EUR'), '≈ 1.23 EUR (estimate)');
    assert.equal(formatMoney(trans, 0, null), '≈ 0 (estimate)');
  });

  it('puts a run’s wall time and money on one line', () => {
    const cost: IRunCost = {
      wall_s: 2.5,
      cpu_s: 2,
      gpu_s: null,
      peak_memory_mb: 120,
      amount: null,
      currency: null,
      basis: null,
      estimated: true
    };
    assert.equal(formatCost(trans, null), '');
    assert.equal(formatCost(trans, cost), '2.5 s');
    assert.equal(
      formatCost(trans, { ...cost, amount: 0.0123, currency: 'USD' }),
      '2.5 s · ≈ 0.01 USD (estimate)'
    );
    assert.equal(formatCost(trans, { ...cost, wall_s: null }), '—');
  });
});

describe('formatData', () => {
  it('writes name, 8 digits of the digest and the shape', () => {
    const data = { name: 'df', digest: '1f2e3d4c5b6a7988', shape: [1000, 2], context: null };
    assert.equal(formatData(data), 'df 1f2e3d4c [1000×2]');
    assert.equal(formatData({ ...data, shape: null }), 'df 1f2e3d4c');
    assert.equal(formatData({ ...data, digest: 'abc', shape: [7] }), 'df abc [7]');
  });
});

describe('formatPairs', () => {
  it('writes the first pairs and counts the rest', () => {
    const values = { a: 1, b: 'x', c: null, d: 0.00001234, e: 5, f: 6 };
    assert.equal(formatPairs(values, 4), 'a=1  b=x  c=—  d=1.23e-5  +2');
    assert.equal(formatPairs(values, 6), 'a=1  b=x  c=—  d=1.23e-5  e=5  f=6');
    assert.equal(formatPairs(values, 10), 'a=1  b=x  c=—  d=1.23e-5  e=5  f=6');
  });

  it('writes nothing for no pairs, and only the count for a limit of 0', () => {
    assert.equal(formatPairs({}, 4), '');
    assert.equal(formatPairs({ a: 1, b: 2 }, 0), '+2');
    assert.equal(formatPairs({ a: 1, b: 2 }, -1), '+2');
  });
});

describe('truncate', () => {
  it('keeps text that fits and ends cut text in an ellipsis within the length', () => {
    assert.equal(truncate('abc', 5), 'abc');
    assert.equal(truncate('abcde', 5), 'abcde');
    assert.equal(truncate('abcdef', 5), 'abcd…');
    assert.equal(truncate('abc', 1), '…');
    assert.equal(truncate('abc', 0), '');
    assert.equal(truncate('', 0), '');
  });
});
