/**
 * The arithmetic of the panels' charts, apart from their DOM: the top of a value
 * axis, shares, positions on a value or a time axis, drift shading and line paths.
 * Pure functions of numbers, so they are tested without a browser.
 */

/** A coordinate to one decimal: SVG attributes stay short. */
export function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * The top of a value axis: the largest finite value, or 1 when none is above 0, so an
 * empty or all-zero chart still has a scale (and nothing divides by 0).
 */
export function scaleTop(values: readonly number[]): number {
  let top = 0;
  for (const value of values) {
    if (Number.isFinite(value) && value > top) {
      top = value;
    }
  }
  return top > 0 ? top : 1;
}

/** Each count's share of their total; zeros when the total is 0. */
export function shares(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map(c => (total > 0 ? c / total : 0));
}

/** A linear map of [d0, d1] onto [r0, r1]; a domain of no width maps everything to r0. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0;
  return span === 0 ? () => r0 : v => r0 + ((v - d0) / span) * (r1 - r0);
}

/** A bar's length in percent of `top`: at least 1 %, so a zero still shows as a sliver. */
export function barPercent(value: number | null, top: number): number {
  const share = top > 0 && value !== null && Number.isFinite(value) ? value / top : 0;
  return Math.min(100, Math.max(1, share * 100));
}

/** Whether a drift method's score is a p-value: drift when it falls below the threshold. */
export function isPValue(method: string): boolean {
  return /^(ks|chi2)\b/.test(method);
}

/** How close a drift score is to its threshold: 0 (far) to 1 (at or past it). */
export function severity(score: number, threshold: number, method: string): number {
  if (Number.isNaN(score)) {
    return 0;
  }
  if (isPValue(method)) {
    return score <= 0 ? 1 : Math.min(1, threshold / score);
  }
  return threshold <= 0 ? 0 : Math.min(1, Math.abs(score) / threshold);
}

/** Where a histogram's bins go along [left, right], and how tall their bars are. */
export interface IBinScale {
  /** True when the bins sit on the value axis; false: equal slots. */
  readonly valued: boolean;
  /** The x of edge `i` (0 to `bins`). */
  readonly x: (i: number) => number;
  /** Bar heights for each bin's share: density (share ÷ relative width) on a value axis. */
  readonly heights: (shares: readonly number[]) => number[];
}

/**
 * The x scale of a histogram with `bins` bins over `edges`: on the value axis when
 * the edges are finite and strictly increasing, else one equal slot per bin (open
 * ends at ±∞, or edges that are not numbers in order).
 */
export function binScale(
  edges: readonly number[],
  bins: number,
  left: number,
  right: number
): IBinScale {
  const used = edges.slice(0, bins + 1);
  const valued =
    bins > 0 &&
    used.length === bins + 1 &&
    used.every(Number.isFinite) &&
    used.slice(1).every((edge, i) => edge > used[i]);
  if (!valued) {
    const slot = linearScale(0, Math.max(1, bins), left, right);
    return { valued, x: slot, heights: values => [...values] };
  }
  const span = used[bins] - used[0];
  const position = linearScale(used[0], used[bins], left, right);
  return {
    valued,
    x: i => position(used[i]),
    heights: values => values.map((v, i) => v / ((used[i + 1] - used[i]) / span))
  };
}

/** A point of a line chart; null where there is no value (the line breaks there). */
export type LinePoint = { x: number; y: number } | null;

/** An SVG path (`d`) through the points, broken at each missing one. */
export function linePath(points: readonly LinePoint[]): string {
  let path = '';
  let previous: LinePoint = null;
  for (const point of points) {
    if (point !== null) {
      path += `${previous === null ? 'M' : 'L'}${round(point.x)},${round(point.y)}`;
    }
    previous = point;
  }
  return path;
}

/** A time bucket in milliseconds since the epoch. */
export interface IBucket {
  start: number;
  end: number;
}

/**
 * Columns for time buckets on an axis `width` wide, from the first bucket's start to
 * the last one's end: each at least 1 wide, with a gap of 1 between neighbours.
 */
export function timeColumns(
  buckets: readonly IBucket[],
  width: number
): { x: number; width: number }[] {
  if (!buckets.length) {
    return [];
  }
  const first = buckets[0].start;
  const span = Math.max(1, buckets[buckets.length - 1].end - first);
  return buckets.map(b => ({
    x: ((b.start - first) / span) * width,
    width: Math.max(1, ((b.end - b.start) / span) * width - 1)
  }));
}
