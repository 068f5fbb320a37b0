import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  barPercent,
  binScale,
  isPValue,
  linearScale,
  linePath,
  round,
  scaleTop,
  severity,
  shares,
  timeColumns
} from '../src/scales';

/** Equal to within floating-point noise (or `tolerance`). */
function close(actual: readonly number[], expected: readonly number[], tolerance = 1e-9): void {
  assert.equal(actual.length, expected.length, `${actual.join()} vs ${expected.join()}`);
  actual.forEach((value, i) => {
    assert.ok(Math.abs(value - expected[i]) < tolerance, `[${i}]: ${value} vs ${expected[i]}`);
  });
}

describe('round', () => {
  it('keeps one decimal', () => {
    assert.equal(round(1.24), 1.2);
    assert.equal(round(1.25), 1.3);
    assert.equal(round(-1.26), -1.3);
    assert.equal(round(0), 0);
    assert.equal(round(279.99), 280);
  });
});

describe('scaleTop', () => {
  it('is the largest value', () => {
    assert.equal(scaleTop([3, 7, 2]), 7);
    assert.equal(scaleTop([0.001]), 0.001);
    assert.equal(scaleTop([1e300, 5]), 1e300);
  });

  it('is 1 for an empty, all-zero or all-negative series', () => {
    assert.equal(scaleTop([]), 1);
    assert.equal(scaleTop([0, 0]), 1);
    assert.equal(scaleTop([-5, -1]), 1);
  });

  it('skips values that are not finite', () => {
    assert.equal(scaleTop([NaN, 2]), 2);
    assert.equal(scaleTop([Infinity, 4]), 4);
    assert.equal(scaleTop([NaN]), 1);
  });
});

describe('shares', () => {
  it('divides each count by the total', () => {
    close(shares([1, 3]), [0.25, 0.75]);
    close(shares([5]), [1]);
    close(shares([0, 2, 0]), [0, 1, 0]);
  });

  it('is all zero when nothing was counted, and empty for no bins', () => {
    assert.deepEqual(shares([0, 0]), [0, 0]);
    assert.deepEqual(shares([]), []);
  });

  it('sums to 1 for huge counts', () => {
    const s = shares([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1]);
    assert.ok(Math.abs(s.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  });
});

describe('linearScale', () => {
  it('maps the domain onto the range, reversed ranges included', () => {
    const x = linearScale(0, 10, 0, 100);
    assert.equal(x(0), 0);
    assert.equal(x(5), 50);
    assert.equal(x(10), 100);
    const y = linearScale(0, 2, 56, 4);
    assert.equal(y(0), 56);
    assert.equal(y(1), 30);
    assert.equal(y(2), 4);
  });

  it('extends past the domain', () => {
    assert.equal(linearScale(0, 10, 0, 100)(20), 200);
    assert.equal(linearScale(0, 10, 0, 100)(-1), -10);
  });

  it('maps everything to the range start when the domain has no width', () => {
    const x = linearScale(3, 3, 30, 276);
    assert.equal(x(3), 30);
    assert.equal(x(100), 30);
  });
});

describe('barPercent', () => {
  it('is the share of the top in percent', () => {
    assert.equal(barPercent(5, 10), 50);
    assert.equal(barPercent(10, 10), 100);
  });

  it('shows a sliver (1 %) for zero, missing and unreadable values', () => {
    assert.equal(barPercent(0, 10), 1);
    assert.equal(barPercent(null, 10), 1);
    assert.equal(barPercent(NaN, 10), 1);
    assert.equal(barPercent(5, 0), 1);
  });

  it('never passes the full width', () => {
    assert.equal(barPercent(20, 10), 100);
    assert.equal(barPercent(Infinity, 10), 1);
  });
});

describe('drift severity', () => {
  it('recognises p-value methods by their name', () => {
    assert.equal(isPValue('ks'), true);
    assert.equal(isPValue('chi2'), true);
    assert.equal(isPValue('ks (p-value)'), true);
    assert.equal(isPValue('kstest'), false);
    assert.equal(isPValue('psi'), false);
    assert.equal(isPValue('wasserstein'), false);
  });

  it('grows with a distance score up to its threshold', () => {
    assert.equal(severity(0, 0.1, 'psi'), 0);
    assert.equal(severity(0.05, 0.1, 'psi'), 0.5);
    assert.equal(severity(-0.05, 0.1, 'psi'), 0.5);
    assert.equal(severity(0.2, 0.1, 'psi'), 1);
    assert.equal(severity(Infinity, 0.1, 'psi'), 1);
  });

  it('grows as a p-value falls to its threshold', () => {
    assert.equal(severity(0.5, 0.05, 'ks'), 0.1);
    assert.equal(severity(0.05, 0.05, 'ks'), 1);
    assert.equal(severity(0.01, 0.05, 'chi2'), 1);
    assert.equal(severity(0, 0.05, 'ks'), 1);
  });

  it('is 0 for a threshold of 0 or a score that is not a number', () => {
    assert.equal(severity(0.3, 0, 'psi'), 0);
    assert.equal(severity(NaN, 0.1, 'psi'), 0);
    assert.equal(severity(NaN, 0.05, 'ks'), 0);
  });
});

describe('binScale', () => {
  it('puts finite increasing edges on the value axis, bars as density', () => {
    const scale = binScale([0, 1, 2, 4], 3, 0, 100);
    assert.equal(scale.valued, true);
    close([0, 1, 2, 3].map(scale.x), [0, 25, 50, 100]);
    // Half the rows in a bin twice as wide: the same density as the narrow bins.
    close(scale.heights([0.25, 0.25, 0.5]), [1, 1, 1]);
  });

  it('uses the first bins + 1 edges only', () => {
    const scale = binScale([0, 1, 2, Infinity], 2, 4, 276);
    assert.equal(scale.valued, true);
    close([scale.x(0), scale.x(2)], [4, 276]);
  });

  it('falls back to equal slots for open ends', () => {
    const scale = binScale([-Infinity, 0, 1, Infinity], 3, 0, 90);
    assert.equal(scale.valued, false);
    close([0, 1, 2, 3].map(scale.x), [0, 30, 60, 90]);
    assert.deepEqual(scale.heights([0.2, 0.3, 0.5]), [0.2, 0.3, 0.5]);
  });

  it('falls back to equal slots for repeated, decreasing or NaN edges', () => {
    assert.equal(binScale([0, 1, 1, 2], 3, 0, 90).valued, false);
    assert.equal(binScale([3, 2, 1], 2, 0, 90).valued, false);
    assert.equal(binScale([0, NaN, 2], 2, 0, 90).valued, false);
    assert.equal(binScale([5, 5], 1, 0, 90).valued, false);
  });

  it('falls back to slots when edges are missing, and has no NaN for no bins', () => {
    assert.equal(binScale([0, 1], 3, 0, 90).valued, false);
    const empty = binScale([], 0, 4, 276);
    assert.equal(empty.valued, false);
    assert.equal(empty.x(0), 4);
    assert.deepEqual(empty.heights([]), []);
  });

  it('copes with huge and tiny value ranges', () => {
    close([0, 1, 2].map(binScale([0, 1e300, 2e300], 2, 0, 100).x), [0, 50, 100]);
    // Edges 1e-9 apart: positions off by less than a thousandth of a chart unit.
    close([0, 1, 2].map(binScale([1, 1 + 1e-9, 1 + 2e-9], 2, 0, 100).x), [0, 50, 100], 1e-3);
  });
});

describe('linePath', () => {
  it('is empty for no points or only missing ones', () => {
    assert.equal(linePath([]), '');
    assert.equal(linePath([null, null]), '');
  });

  it('moves to a single point', () => {
    assert.equal(linePath([{ x: 30, y: 56 }]), 'M30,56');
  });

  it('draws through points, one decimal each', () => {
    assert.equal(
      linePath([
        { x: 30, y: 56 },
        { x: 153.04, y: 12.25 },
        { x: 276, y: 4 }
      ]),
      'M30,56L153,12.3L276,4'
    );
  });

  it('breaks the line at missing points, leading ones included', () => {
    assert.equal(
      linePath([null, { x: 1, y: 1 }, { x: 2, y: 2 }, null, { x: 4, y: 4 }, { x: 5, y: 5 }]),
      'M1,1L2,2M4,4L5,5'
    );
    assert.equal(linePath([{ x: 1, y: 1 }, null, { x: 3, y: 3 }]), 'M1,1M3,3');
  });
});

describe('timeColumns', () => {
  const minute = 60_000;
  const t0 = Date.UTC(2026, 4, 3, 12);

  it('is empty for no buckets', () => {
    assert.deepEqual(timeColumns([], 280), []);
  });

  it('gives a single bucket the whole width less the gap', () => {
    assert.deepEqual(timeColumns([{ start: t0, end: t0 + minute }], 280), [{ x: 0, width: 279 }]);
  });

  it('places buckets by time, gaps in time included', () => {
    const columns = timeColumns(
      [
        { start: t0, end: t0 + minute },
        { start: t0 + minute, end: t0 + 2 * minute },
        { start: t0 + 3 * minute, end: t0 + 4 * minute }
      ],
      280
    );
    close(
      columns.map(c => c.x),
      [0, 70, 210]
    );
    close(
      columns.map(c => c.width),
      [69, 69, 69]
    );
  });

  it('keeps columns at least 1 wide, zero-length buckets included', () => {
    assert.deepEqual(timeColumns([{ start: t0, end: t0 }], 280), [{ x: 0, width: 1 }]);
    const many = Array.from({ length: 1000 }, (_, i) => ({
      start: t0 + i * minute,
      end: t0 + (i + 1) * minute
    }));
    const columns = timeColumns(many, 280);
    assert.ok(columns.every(c => c.width === 1));
    assert.ok(Math.abs(columns[999].x - 279.72) < 1e-9);
  });
});
