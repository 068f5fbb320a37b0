/**
 * A service's traffic per version over time as chart series: one value per version and
 * time bucket, aligned on one time axis. Pure, so tested without a browser; the
 * service page (panels/servicepage.ts) draws them.
 */
import { ITimeline, ITimelinePoint } from './tokens';

/** What a timeline chart plots. */
export type TimelineMetric = 'rate_per_s' | 'p50_ms' | 'p99_ms' | 'error_rate';

/** One version's values, one per bucket of `ITimelineSeries.times`; null: no value. */
export interface IVersionSeries {
  version: string;
  values: (number | null)[];
  /** The points behind the values (null where the version had no requests). */
  points: (ITimelinePoint | null)[];
}

/** Series of one metric on a common time axis. */
export interface ITimelineSeries {
  /** Each bucket's start (ms since the epoch), oldest first. */
  times: number[];
  /** The length of a bucket in ms. */
  bucketMs: number;
  series: IVersionSeries[];
}

/** At most this many buckets on an axis, whatever the answer says. */
const MAX_BUCKETS = 5000;

/**
 * The buckets from the first point's to the last one's, every `bucket_s` (so a bucket
 * with no requests at all still has its place); the points' own times when `bucket_s`
 * is not positive or the span would be too many buckets.
 */
export function timelineBuckets(timeline: Pick<ITimeline, 'bucket_s' | 'points'>): number[] {
  const times = [...new Set(timeline.points.map(p => Date.parse(p.time)).filter(Number.isFinite))].sort(
    (a, b) => a - b
  );
  if (!times.length) {
    return [];
  }
  const step = timeline.bucket_s * 1000;
  const first = times[0];
  const last = times[times.length - 1];
  if (!(step > 0) || (last - first) / step + 1 > MAX_BUCKETS) {
    return times;
  }
  const buckets: number[] = [];
  for (let t = first; t <= last; t += step) {
    buckets.push(t);
  }
  // A point off the grid (another bucket size) keeps its own place.
  const grid = new Set(buckets);
  return times.some(t => !grid.has(t)) ? [...new Set([...buckets, ...times])].sort((a, b) => a - b) : buckets;
}

/**
 * One series per version (in `order`, then any other version of the timeline) of
 * `metric` per bucket. A version without requests in a bucket has a rate of 0 there
 * and no latency or error rate (null: the line breaks).
 */
export function timelineSeries(
  timeline: ITimeline,
  metric: TimelineMetric,
  order: readonly string[] = timeline.versions
): ITimelineSeries {
  const times = timelineBuckets(timeline);
  const index = new Map(times.map((t, i) => [t, i]));
  const versions = [...new Set([...order, ...timeline.versions, ...timeline.points.map(p => p.version)])];
  const byVersion = new Map<string, IVersionSeries>(
    versions.map(version => [
      version,
      {
        version,
        values: times.map(() => (metric === 'rate_per_s' ? 0 : null)),
        points: times.map(() => null)
      }
    ])
  );
  for (const point of timeline.points) {
    const i = index.get(Date.parse(point.time));
    const series = byVersion.get(point.version);
    if (i === undefined || series === undefined) {
      continue;
    }
    const value = point[metric];
    series.values[i] = value === null || value === undefined || !Number.isFinite(value) ? series.values[i] : value;
    series.points[i] = point;
  }
  return { times, bucketMs: Math.max(0, timeline.bucket_s * 1000), series: versions.map(v => byVersion.get(v)!) };
}

/** Totals of one version over the timeline: requests, errors, error rate. */
export function timelineTotals(
  timeline: Pick<ITimeline, 'points'>,
  version: string
): { requests: number; errors: number; errorRate: number | null } {
  let requests = 0;
  let errors = 0;
  for (const p of timeline.points) {
    if (p.version === version) {
      requests += p.requests;
      errors += p.errors;
    }
  }
  return { requests, errors, errorRate: requests > 0 ? errors / requests : null };
}
