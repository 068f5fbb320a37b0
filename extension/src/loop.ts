/**
 * The words of a service's retraining loop, apart from their DOM: whether `ship watch`
 * runs and backs off, each event's title and tone, a retraining's facts, and the gate's
 * checks (champion against challenger, the interval of their difference, the verdict).
 * Pure, so tested without a browser; panels/loop.ts draws them.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { formatNumber, formatPercent, formatSeconds, formatTime } from './format';
import { CheckState, checkState, decisionBy, decisionTitle, formatShare, formatSteps } from './release';
import { ILoopEvent, ILoopStatus, IRetrainCheck, ReleaseAction } from './tokens';

/** What a missing figure shows. */
const NONE = '—';

/** Events listed before "Show all". */
export const EVENTS_SHOWN = 5;

/** How an event reads at a glance: its left border and title colour. */
export type EventTone = 'good' | 'bad' | 'warn' | 'info' | 'plain';

/** The watcher and its back-off in words. */
export interface ILoopSummary {
  /** Whether a `ship watch` process is alive. */
  watcher: 'running' | 'stopped';
  /** The section's one-word state: "watching", "backing off", "not watched". */
  stateLabel: string;
  /** "ship watch runs (pid 4242) since 14:05 · last look 14:09", or how to start it. */
  watcherText: string;
  /** "Backing off until 15:05 after 2 rejected challengers"; null when not backing off. */
  backoff: string | null;
  /** "Last retrained 14:30"; null before the first retraining. */
  lastRetrain: string | null;
}

/** The watcher's state; a back-off that has ended is not one. */
export function loopSummary(
  trans: TranslationBundle,
  status: ILoopStatus,
  now: Date = new Date(),
  locales: string | string[] = []
): ILoopSummary {
  const state = status.state;
  const time = (iso: string | null): string => formatTime(iso, now, locales);
  const until = state.backoff_until ? new Date(state.backoff_until) : null;
  const backingOff = until !== null && !Number.isNaN(until.getTime()) && until > now;
  let watcherText: string;
  if (status.running) {
    const parts = [
      state.started
        ? trans.__('ship watch runs (pid %1) since %2', state.pid, time(state.started))
        : trans.__('ship watch runs (pid %1)', state.pid)
    ];
    if (state.last_check) {
      parts.push(trans.__('last look %1', time(state.last_check)));
    }
    watcherText = parts.join(' · ');
  } else {
    watcherText = trans.__(
      'ship watch is not running: start it in a terminal with “ship watch %1”',
      status.service
    );
  }
  return {
    watcher: status.running ? 'running' : 'stopped',
    stateLabel: backingOff
      ? trans.__('backing off')
      : status.running
        ? trans.__('watching')
        : trans.__('not watched'),
    watcherText,
    backoff: backingOff
      ? trans._n(
          'Backing off until %2 after %1 rejected challenger',
          'Backing off until %2 after %1 rejected challengers',
          state.rejections,
          time(state.backoff_until)
        )
      : null,
    lastRetrain: state.last_retrain ? trans.__('Last retrained %1', time(state.last_retrain)) : null
  };
}

/** The events newest first (the API gives them oldest first), the given array untouched. */
export function newestFirst(events: readonly ILoopEvent[]): ILoopEvent[] {
  return [...events].reverse();
}

/** A retraining's decision in words, naming the versions. */
export function retrainTitle(trans: TranslationBundle, event: ILoopEvent): string {
  const challenger = event.challenger ? `v${event.challenger}` : trans.__('the challenger');
  const champion = event.champion ? `v${event.champion}` : trans.__('the champion');
  switch (event.decision) {
    case 'canary':
      return trans.__('Challenger %1 released as a canary', challenger);
    case 'passed':
      return trans.__('Challenger %1 passed the gate (not released)', challenger);
    case 'rejected':
      return trans.__('Challenger %1 rejected: champion %2 stays', challenger, champion);
    case 'no-holdout':
      return trans.__('Challenger %1 not released: no holdout to check forgetting', challenger);
    case 'too-little-feedback':
      return trans.__('Nothing trained: too little labelled production data');
    case 'first-model':
      return trans.__('First model: nothing to compare with');
    case 'failed':
      return trans.__('Retraining failed');
  }
  return trans.__('Retrained: %1', event.decision ?? NONE);
}

function retrainTone(decision: string | undefined): EventTone {
  switch (decision) {
    case 'canary':
    case 'passed':
      return 'good';
    case 'rejected':
    case 'no-holdout':
    case 'failed':
      return 'bad';
    case 'too-little-feedback':
      return 'warn';
  }
  return 'info';
}

/** An event's words: its kind, title, tone and the message to show under the title. */
export interface IEventText {
  kindLabel: string;
  title: string;
  tone: EventTone;
  /** The message without what the title says already; '' for none. */
  message: string;
}

/** How one event reads (times as `formatTime` writes them on `now`'s day). */
export function eventText(
  trans: TranslationBundle,
  event: ILoopEvent,
  now: Date = new Date(),
  locales: string | string[] = []
): IEventText {
  const message = typeof event.message === 'string' ? event.message : '';
  switch (event.kind) {
    case 'watch':
      return {
        kindLabel: trans.__('watch'),
        title: message.startsWith('stopped') ? trans.__('Watcher stopped') : trans.__('Watcher started'),
        tone: 'plain',
        message
      };
    case 'trigger':
      return {
        kindLabel: trans.__('trigger'),
        title:
          event.reason === 'drift'
            ? trans.__('Triggered by dataset drift')
            : event.reason === 'accuracy'
              ? trans.__('Triggered by low accuracy')
              : trans.__('Triggered'),
        tone: 'warn',
        message
      };
    case 'retrain': {
      // "canary: better on ..." — the title says the decision; the checks say the rest.
      const prefix = `${event.decision ?? ''}: `;
      const rest = event.decision && message.startsWith(prefix) ? message.slice(prefix.length) : message;
      return {
        kindLabel: trans.__('retrain'),
        title: retrainTitle(trans, event),
        tone: retrainTone(event.decision),
        message: event.checks?.length ? '' : rest
      };
    }
    case 'backoff':
      return {
        kindLabel: trans.__('back-off'),
        title: event.until
          ? trans.__('Backing off until %1', formatTime(event.until, now, locales))
          : trans.__('Backing off'),
        tone: 'warn',
        message
      };
    case 'release': {
      const action = event.action ?? '';
      const title =
        action && event.version
          ? decisionTitle(trans, {
              time: event.time,
              // An action this front end does not know reads as it is (decisionTitle's default).
              action: action as ReleaseAction,
              version: event.version,
              automatic: event.automatic === true,
              percent: null,
              reason: '',
              evidence: []
            })
          : trans.__('Release decision');
      const by = event.automatic === undefined ? '' : ` (${decisionBy(trans, { automatic: event.automatic })})`;
      // "promote 2: <the gate's reason>" — the title says what and which.
      const prefix = `${action} ${event.version ?? ''}: `;
      return {
        kindLabel: trans.__('release'),
        title: title + by,
        tone: action === 'promote' ? 'good' : action === 'rollback' ? 'bad' : 'info',
        message: action && message.startsWith(prefix) ? message.slice(prefix.length) : message
      };
    }
    case 'error':
      return { kindLabel: trans.__('error'), title: trans.__('The look failed'), tone: 'bad', message };
  }
  return { kindLabel: String(event.kind), title: String(event.kind), tone: 'plain', message };
}

/**
 * A retraining's facts, a line each: the versions, the production rows (trained on and
 * held out), the canary it started, how long it took.
 */
export function retrainFacts(trans: TranslationBundle, event: ILoopEvent): string[] {
  const facts: string[] = [];
  if (event.champion || event.challenger) {
    facts.push(
      trans.__(
        'champion %1 → challenger %2',
        event.champion ? `v${event.champion}` : NONE,
        event.challenger ? `v${event.challenger}` : NONE
      )
    );
  }
  const data = event.data;
  if (data?.labelled_rows) {
    facts.push(
      data.recent_rows
        ? trans._n(
            '%1 labelled production row: %2 trained on, %3 held out for the gate',
            '%1 labelled production rows: %2 trained on, %3 held out for the gate',
            data.labelled_rows,
            data.training_rows ?? 0,
            data.recent_rows
          )
        : trans._n('%1 labelled production row', '%1 labelled production rows', data.labelled_rows)
    );
  }
  if (event.canary) {
    facts.push(
      trans.__(
        'canary v%1 at %2 (steps %3)',
        event.canary.version,
        formatShare(event.canary.percent),
        formatSteps(event.canary.steps, event.canary.percent)
      )
    );
  }
  if (typeof event.seconds === 'number' && event.seconds > 0) {
    facts.push(trans.__('took %1', formatSeconds(event.seconds)));
  }
  return facts;
}

/** A gate's metric in words. */
export function retrainMetricLabel(trans: TranslationBundle, metric: string): string {
  switch (metric) {
    case 'accuracy':
      return trans.__('accuracy');
    case 'rmse':
      return trans.__('RMSE');
  }
  return metric.replace(/_/g, ' ');
}

function isShare(metric: string): boolean {
  return metric === 'accuracy';
}

/** A metric's value: accuracy as a percentage, anything else to 4 significant digits. */
export function formatRetrainValue(metric: string, value: number | null): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return NONE;
  }
  return isShare(metric) ? formatPercent(value) : formatNumber(value);
}

/** A signed difference: "+8", "−1.2", "±0". */
function signed(value: number): string {
  const shown = formatNumber(Number(Math.abs(value).toPrecision(2)));
  return `${value > 0 ? '+' : value < 0 ? '−' : '±'}${shown}`;
}

/**
 * The interval of challenger − champion: "[+8, +18] pp" for accuracy (percentage
 * points), "[−0.012, +0.0034]" otherwise, 2 significant digits; "—" when not computed.
 */
export function formatInterval(metric: string, interval: [number, number] | null): string {
  if (!interval || interval.length !== 2 || !interval.every(Number.isFinite)) {
    return NONE;
  }
  const scale = isShare(metric) ? 100 : 1;
  const text = `[${signed(interval[0] * scale)}, ${signed(interval[1] * scale)}]`;
  return isShare(metric) ? `${text} pp` : text;
}

/** A check's verdict in words: passed, failed, not judged. */
export function verdictLabel(trans: TranslationBundle, state: CheckState): string {
  switch (state) {
    case 'passed':
      return trans.__('passed');
    case 'failing':
      return trans.__('failed');
    case 'waiting':
      return trans.__('not judged');
  }
}

/** A check as the cells of its rows. */
export interface IRetrainCheckText {
  /** "recent" or "holdout". */
  name: string;
  metric: string;
  champion: string;
  challenger: string;
  interval: string;
  state: CheckState;
  verdict: string;
  /** "240 rows · better on 240 recent rows: ..." */
  detail: string;
  /** All of it in one sentence, for a tooltip. */
  summary: string;
}

/** The words and figures of one check of the retraining gate. */
export function formatRetrainCheck(trans: TranslationBundle, check: IRetrainCheck): IRetrainCheckText {
  const name =
    check.name === 'recent' ? trans.__('recent') : check.name === 'holdout' ? trans.__('holdout') : check.name;
  const metric = retrainMetricLabel(trans, check.metric);
  const champion = formatRetrainValue(check.metric, check.champion);
  const challenger = formatRetrainValue(check.metric, check.challenger);
  const interval = formatInterval(check.metric, check.interval);
  const state = checkState(check);
  const verdict = verdictLabel(trans, state);
  const rows = trans._n('%1 row', '%1 rows', check.rows);
  const detail = check.reason ? `${rows} · ${check.reason}` : rows;
  const summary = trans.__(
    '%1 (%2, %3): champion %4, challenger %5, challenger − champion %6: %7',
    name,
    metric,
    rows,
    champion,
    challenger,
    interval,
    verdict
  );
  return { name, metric, champion, challenger, interval, state, verdict, detail, summary };
}
