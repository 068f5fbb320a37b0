import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { timelineBuckets, timelineSeries, timelineTotals } from '../src/timeline';
import { ITimeline, ITimelinePoint } from '../src/tokens';

const T0 = Date.parse('2026-12-06T19:30:00+00:00');

function point(minute: number, version: string, overrides: Partial<ITimelinePoint> = {}): ITimelinePoint {
  return {
    time: new Date(T0 + minute * 60000).toISOString(),
    version,
    requests: 60,
    rate_per_s: 1,
    p50_ms: 1,
    p99_ms: 4,
    errors: 0,
    error_rate: 0,
    ...overrides
  };
}

function timeline(points: ITimelinePoint[], versions = ['1', '2']): ITimeline {
  return { window_s: 3600, bucket_s: 60, versions, points };
}

describe('timelineBuckets', () => {
  it('is every bucket from the first point to the last, gaps included', () => {
    const t = timeline([point(0, '1'), point(3, '1'), point(1, '2')]);
    assert.deepEqual(timelineBuckets(t), [0, 1, 2, 3].map(m => T0 + m * 60000));
  });

  it('is empty without points', () => {
    assert.deepEqual(timelineBuckets(timeline([])), []);
  });

  it('falls back to the points’ own times when the bucket size is not usable', () => {
    const t = { ...timeline([point(0, '1'), point(7, '1')]), bucket_s: 0 };
    assert.deepEqual(timelineBuckets(t), [T0, T0 + 7 * 60000]);
  });

  it('keeps a point that is off the grid', () => {
    const odd: ITimelinePoint = { ...point(0, '1'), time: new Date(T0 + 90000).toISOString() };
    const t = timeline([point(0, '1'), odd, point(2, '1')]);
    assert.deepEqual(timelineBuckets(t), [T0, T0 + 60000, T0 + 90000, T0 + 120000]);
  });
});

describe('timelineSeries', () => {
  const t = timeline([
    point(0, '1', { rate_per_s: 2, p50_ms: 1.1 }),
    point(2, '1', { rate_per_s: 3, p50_ms: 1.3 }),
    point(2, '2', { rate_per_s: 0.5, p50_ms: 2.5, errors: 3, error_rate: 0.1 })
  ]);

  it('gives a version without requests in a bucket a rate of 0', () => {
    const rate = timelineSeries(t, 'rate_per_s');
    assert.deepEqual(rate.times, [0, 1, 2].map(m => T0 + m * 60000));
    assert.equal(rate.bucketMs, 60000);
    assert.deepEqual(
      rate.series.map(s => [s.version, s.values]),
      [
        ['1', [2, 0, 3]],
        ['2', [0, 0, 0.5]]
      ]
    );
  });

  it('breaks latency and error lines where a version had no requests', () => {
    const p50 = timelineSeries(t, 'p50_ms');
    assert.deepEqual(p50.series.map(s => s.values), [
      [1.1, null, 1.3],
      [null, null, 2.5]
    ]);
    const errors = timelineSeries(t, 'error_rate');
    assert.deepEqual(errors.series[1].values, [null, null, 0.1]);
    assert.equal(errors.series[1].points[2]?.errors, 3);
    assert.equal(errors.series[1].points[0], null);
  });

  it('orders series as asked, then any other version', () => {
    const extra = timeline([...t.points, point(1, '3')], ['1', '2']);
    assert.deepEqual(
      timelineSeries(extra, 'p99_ms', ['2']).series.map(s => s.version),
      ['2', '1', '3']
    );
  });

  it('keeps a null latency as a gap', () => {
    const gap = timeline([point(0, '1', { p99_ms: null }), point(1, '1')]);
    assert.deepEqual(timelineSeries(gap, 'p99_ms').series[0].values, [null, 4]);
  });
});

describe('timelineTotals', () => {
  it('adds up a version’s requests and errors', () => {
    const t = timeline([point(0, '2', { errors: 3 }), point(1, '2', { errors: 1 }), point(1, '1')]);
    assert.deepEqual(timelineTotals(t, '2'), { requests: 120, errors: 4, errorRate: 4 / 120 });
    assert.deepEqual(timelineTotals(t, '9'), { requests: 0, errors: 0, errorRate: null });
  });
});
