/**
 * The words and arithmetic of a service's release, apart from their DOM: the traffic
 * split's segments, a check's figures, a shadow's flips and deltas, a decision's title,
 * the version roles, and the Start-canary form's parsing. Pure, so tested without a
 * browser; panels/release.ts draws them.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { formatMs, formatNumber, formatPercent } from './format';
import {
  IRelease,
  IReleaseChange,
  IReleaseCheck,
  IReleaseDecision,
  IShadowPair,
  IShadowReport
} from './tokens';

/** What a missing figure shows. */
const NONE = '—';

/** The steps a new canary is offered (kernel_magics/serving/release.py DEFAULT_STEPS). */
export const DEFAULT_STEPS = [5, 25, 50, 100];

/** A segment narrower than this (percent of the bar) carries no label inside it. */
export const MIN_LABELLED_PERCENT = 18;

/** The part a version plays in a release. */
export type VersionRole = 'champion' | 'canary' | 'shadow';

/** One version's share of the answered requests. */
export interface ISplitSegment {
  version: string;
  role: 'champion' | 'canary';
  /** Share of requests, 0 to 100. */
  percent: number;
  /** Wide enough to carry its label inside. */
  labelled: boolean;
}

/**
 * The traffic split as bar segments, champion first: the canary takes its percent
 * (clamped to 0–100) and the champion the rest. A segment with no share is left out,
 * so a canary at 100 % fills the bar alone.
 */
export function splitSegments(release: Pick<IRelease, 'champion' | 'canary'>): ISplitSegment[] {
  const raw = release.canary ? release.canary.percent : 0;
  const canary = Number.isFinite(raw) ? Math.min(100, Math.max(0, raw)) : 0;
  const segments: ISplitSegment[] = [
    { version: release.champion, role: 'champion', percent: 100 - canary, labelled: false }
  ];
  if (release.canary) {
    segments.push({ version: release.canary.version, role: 'canary', percent: canary, labelled: false });
  }
  return segments
    .filter(s => s.percent > 0)
    .map(s => ({ ...s, labelled: s.percent >= MIN_LABELLED_PERCENT }));
}

/** A traffic share in percent (0–100) as "25 %", "2.5 %", "0.1 %". */
export function formatShare(percent: number): string {
  return Number.isFinite(percent) ? `${formatNumber(Number(percent.toPrecision(3)))} %` : NONE;
}

/** A canary's steps as "5 → 25 → 50 → 100 %", the current one in brackets. */
export function formatSteps(steps: readonly number[], current: number | null = null): string {
  if (!steps.length) {
    return NONE;
  }
  const shown = steps.map(s => {
    const text = formatNumber(Number(s.toPrecision(3)));
    return s === current ? `[${text}]` : text;
  });
  return `${shown.join(' → ')} %`;
}

/** The role of `version` in the release; null for a version that takes no traffic. */
export function versionRole(
  release: Pick<IRelease, 'champion' | 'canary' | 'shadows'>,
  version: string
): VersionRole | null {
  if (version === release.champion) {
    return 'champion';
  }
  if (release.canary?.version === version) {
    return 'canary';
  }
  return release.shadows.includes(version) ? 'shadow' : null;
}

/**
 * Versions in the order their series are drawn and coloured: champion, canary,
 * shadows, then the rest as given (each once).
 */
export function orderVersions(
  versions: readonly string[],
  release: Pick<IRelease, 'champion' | 'canary' | 'shadows'> | null
): string[] {
  const rank = (v: string): number => {
    const role = release ? versionRole(release, v) : null;
    return role === 'champion' ? 0 : role === 'canary' ? 1 : role === 'shadow' ? 2 : 3;
  };
  const unique = [...new Set(versions)];
  return unique
    .map((v, i) => ({ v, i }))
    .sort((a, b) => rank(a.v) - rank(b.v) || a.i - b.i)
    .map(({ v }) => v);
}

/** Versions a canary can be started with: every built one but the champion and canary. */
export function canaryCandidates(release: Pick<IRelease, 'champion' | 'canary' | 'versions'>): string[] {
  return release.versions.filter(v => v !== release.champion && v !== release.canary?.version);
}

/** Versions that can become a shadow: neither champion, canary nor a shadow already. */
export function shadowCandidates(
  release: Pick<IRelease, 'champion' | 'canary' | 'shadows' | 'versions'>
): string[] {
  return release.versions.filter(v => versionRole(release, v) === null);
}

/** A check's state: passed, failing, or waiting for enough data. */
export type CheckState = 'passed' | 'failing' | 'waiting';

/** `passed` as a state. */
export function checkState(check: Pick<IReleaseCheck, 'passed'>): CheckState {
  return check.passed === true ? 'passed' : check.passed === false ? 'failing' : 'waiting';
}

/** A state in words. */
export function checkStateLabel(trans: TranslationBundle, state: CheckState): string {
  switch (state) {
    case 'passed':
      return trans.__('passed');
    case 'failing':
      return trans.__('failing');
    case 'waiting':
      return trans.__('waiting for data');
  }
}

/** A metric's name in words: "error rate", "latency p99". */
export function metricLabel(trans: TranslationBundle, metric: string): string {
  switch (metric) {
    case 'error_rate':
      return trans.__('error rate');
    case 'latency_p50_ms':
      return trans.__('latency p50');
    case 'latency_p99_ms':
      return trans.__('latency p99');
    case 'disagreement':
      return trans.__('disagreement');
    case 'accuracy':
      return trans.__('accuracy');
  }
  return metric.replace(/_/g, ' ');
}

/**
 * A metric's value: shares as percentages and latencies in ms, both to 3 significant
 * digits; anything else as a number.
 */
export function formatMetricValue(metric: string, value: number | null): string {
  if (value === null || value === undefined) {
    return NONE;
  }
  if (/_ms$/.test(metric)) {
    return formatMs(Number(value.toPrecision(3)));
  }
  if (/(rate|disagreement|accuracy|agreement)$/.test(metric)) {
    return formatPercent(value);
  }
  return formatNumber(value);
}

/** A p-value: two significant digits, exponent form below 0.001 ("2.0e-9"). */
export function formatPValue(p: number | null): string {
  if (p === null || p === undefined || !Number.isFinite(p)) {
    return NONE;
  }
  if (p !== 0 && Math.abs(p) < 1e-3) {
    return p.toExponential(1);
  }
  return String(Number(p.toPrecision(2)));
}

/** A check as the cells of its rows: the figures, and the line of how it was decided. */
export interface ICheckText {
  metric: string;
  champion: string;
  canary: string;
  state: CheckState;
  stateLabel: string;
  /** "Fisher's exact test (one-sided) · p=2.0e-9 · n=570 / 30 · threshold p < 0.01" */
  detail: string;
  /** All of it in one sentence, for a tooltip. */
  summary: string;
}

/** The words and figures of one check. */
export function formatCheck(trans: TranslationBundle, check: IReleaseCheck): ICheckText {
  const metric = metricLabel(trans, check.metric);
  const champion = formatMetricValue(check.metric, check.champion);
  const canary = formatMetricValue(check.metric, check.canary);
  const state = checkState(check);
  const stateLabel = checkStateLabel(trans, state);
  const parts = [
    check.test || NONE,
    `p=${formatPValue(check.p_value)}`,
    trans.__('n=%1 / %2', check.n_champion, check.n_canary)
  ];
  if (check.threshold) {
    parts.push(trans.__('threshold %1', check.threshold));
  }
  const summary = trans.__(
    '%1: champion %2 (%3 requests), canary %4 (%5 requests); %6, p=%7, threshold %8: %9',
    metric,
    champion,
    check.n_champion,
    canary,
    check.n_canary,
    check.test || NONE,
    formatPValue(check.p_value),
    check.threshold || NONE,
    stateLabel
  );
  return { metric, champion, canary, state, stateLabel, detail: parts.join(' · '), summary };
}

/** How many flips the text names before "+n more". */
export const FLIPS_SHOWN = 4;

/**
 * A shadow's flips in one line, the most frequent first: "10 flips: 7 no → yes,
 * 3 yes → no"; "no flips" when the predictions never changed.
 */
export function flipsText(
  trans: TranslationBundle,
  flips: IShadowReport['flips'],
  shown = FLIPS_SHOWN
): string {
  const real = flips.filter(f => f.count > 0);
  if (!real.length) {
    return trans.__('no flips');
  }
  const total = real.reduce((sum, f) => sum + f.count, 0);
  const sorted = [...real].sort(
    (a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to)
  );
  const parts = sorted.slice(0, shown).map(f => `${f.count} ${f.from} → ${f.to}`);
  if (sorted.length > shown) {
    parts.push(trans.__('+%1 more', sorted.length - shown));
  }
  return `${trans._n('%1 flip', '%1 flips', total)}: ${parts.join(', ')}`;
}

/**
 * Champion against shadow as "1.2 ms → 1.4 ms (+0.2 ms)", 3 significant digits; shares
 * as percentages with the change in percentage points ("0 % → 1 % (+1 pp)").
 */
export function formatPair(pair: IShadowPair, kind: 'ms' | 'share'): string {
  const value = (v: number | null): string =>
    v === null ? NONE : kind === 'ms' ? formatMs(Number(v.toPrecision(3))) : formatPercent(v);
  const text = `${value(pair.champion)} → ${value(pair.shadow)}`;
  if (pair.champion === null || pair.shadow === null) {
    return text;
  }
  const scale = kind === 'ms' ? 1 : 100;
  const delta = Number(((pair.shadow - pair.champion) * scale).toPrecision(3));
  const sign = delta > 0 ? '+' : delta < 0 ? '−' : '±';
  return `${text} (${sign}${formatNumber(Math.abs(delta))} ${kind === 'ms' ? 'ms' : 'pp'})`;
}

/** A decision's title: "Canary v2 at 25 %", "Promoted v2", "Rolled back v2". */
export function decisionTitle(trans: TranslationBundle, decision: IReleaseDecision): string {
  const v = decision.version;
  const percent = decision.percent;
  switch (decision.action) {
    case 'canary':
      return percent === null
        ? trans.__('Canary v%1 started', v)
        : trans.__('Canary v%1 started at %2', v, formatShare(percent));
    case 'step':
      return percent === null
        ? trans.__('Canary v%1 stepped up', v)
        : trans.__('Canary v%1 stepped up to %2', v, formatShare(percent));
    case 'promote':
      return trans.__('Promoted v%1 to champion', v);
    case 'rollback':
      return trans.__('Rolled back v%1', v);
    case 'shadow':
      return trans.__('Shadow v%1 added', v);
    case 'unshadow':
      return trans.__('Shadow v%1 removed', v);
  }
  return `${String(decision.action)} v${v}`;
}

/** Who made a decision: the gate, or a person. */
export function decisionBy(trans: TranslationBundle, decision: Pick<IReleaseDecision, 'automatic'>): string {
  return decision.automatic ? trans.__('automatic') : trans.__('by hand');
}

/** A percentage typed into a form: a number in (0, 100], "%" allowed; null otherwise. */
export function parsePercent(text: string): number | null {
  const trimmed = text.trim().replace(/\s*%$/, '');
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(trimmed)) {
    return null;
  }
  const value = Number(trimmed);
  return value > 0 && value <= 100 ? value : null;
}

/**
 * Steps typed into a form ("5, 25, 50, 100", commas or spaces, "%" allowed): sorted,
 * each once; [] for none; null when one is not a percentage in (0, 100].
 */
export function parseSteps(text: string): number[] | null {
  const items = text
    .replace(/%/g, ' ')
    .split(/[\s,;]+/)
    .filter(item => item.length > 0);
  const values: number[] = [];
  for (const item of items) {
    const value = parsePercent(item);
    if (value === null) {
      return null;
    }
    values.push(value);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

/**
 * The Start-canary form's change, or why it cannot be sent: a version, a percentage in
 * (0, 100], and steps each in (0, 100] with at least one above the percentage (so the
 * gate has somewhere to go), or no steps (the server's default).
 */
export function canaryChange(
  trans: TranslationBundle,
  version: string,
  percentText: string,
  stepsText: string
): IReleaseChange | string {
  if (!version) {
    return trans.__('Choose a version.');
  }
  const percent = parsePercent(percentText);
  if (percent === null) {
    return trans.__('The traffic share must be a percentage above 0 and at most 100, not “%1”.', percentText);
  }
  const steps = parseSteps(stepsText);
  if (steps === null) {
    return trans.__('Steps must be percentages above 0 and at most 100, like 5, 25, 50, 100.');
  }
  if (steps.length && steps[steps.length - 1] < percent) {
    return trans.__('The last step (%1) is below the traffic share (%2).', formatShare(steps[steps.length - 1]), formatShare(percent));
  }
  return steps.length
    ? { action: 'canary', version, percent, steps }
    : { action: 'canary', version, percent };
}
