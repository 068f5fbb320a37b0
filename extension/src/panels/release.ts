/**
 * A service's release, drawn: the traffic split (champion and canary shares, shadows
 * marked), the buttons that change it, the canary's live checks against the champion,
 * each shadow's report, and the decisions with their reasons, newest first. DOM only:
 * the words come from ../release.ts, the dialogs and requests from releaseactions.ts.
 * Used by the Services panel (per service) and the service page.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { el, formatPercent, formatTime } from '../format';
import {
  canaryCandidates,
  decisionBy,
  decisionTitle,
  flipsText,
  formatCheck,
  formatPair,
  formatShare,
  formatSteps,
  shadowCandidates,
  splitSegments
} from '../release';
import { IAgreementSlice, IRelease, IReleaseCheck, IReleaseDecision, IShadowReport } from '../tokens';
import { headedTable, scrolling } from './base';

/** A change a button asks for; the dialogs ask the rest (releaseactions.ts). */
export type ReleaseRequest =
  | { action: 'promote' | 'rollback' | 'canary' | 'shadow' }
  | { action: 'unshadow'; version: string };

/**
 * Which collapsible sections are open, by key, so a re-render (the panel polls) keeps
 * what the user opened or closed.
 */
export class ExpandedSections {
  /** A `<details>` under `key`, open as last left (else `open`). */
  details(key: string, summary: string | HTMLElement, open = true): HTMLDetailsElement {
    const details = el('details', 'jp-ship-release-section');
    details.dataset.section = key.split('/').pop() ?? key;
    details.open = this._open.get(key) ?? open;
    details.addEventListener('toggle', () => this._open.set(key, details.open));
    const head = el('summary', 'jp-ship-release-summary');
    head.append(summary);
    details.append(head);
    return details;
  }

  /** Whether `key` was left open. */
  isOpen(key: string): boolean {
    return this._open.get(key) ?? false;
  }

  /** Remember `key` as open or closed. */
  setOpen(key: string, open: boolean): void {
    this._open.set(key, open);
  }

  private readonly _open = new Map<string, boolean>();
}

/** How a release is drawn. */
export interface IReleaseViewOptions {
  trans: TranslationBundle;
  /** Remembers open sections across renders. */
  expanded: ExpandedSections;
  /** Tells this release's sections from others' (e.g. the service's name). */
  key: string;
  /** A button asks for a change. */
  onRequest(request: ReleaseRequest): void;
  /** Decisions listed before "Show all"; default 5. */
  decisionsShown?: number;
}

/** The release of one service. */
export function renderRelease(release: IRelease, options: IReleaseViewOptions): HTMLElement {
  const root = el('div', 'jp-ship-release');
  root.dataset.service = release.service;
  root.append(
    renderSplit(release, options),
    renderActions(release, options)
  );
  if (release.comparison) {
    root.append(renderComparison(release, options));
  }
  for (const report of release.shadow_reports) {
    root.append(renderShadow(release, report, options));
  }
  root.append(renderDecisions(release, options));
  return root;
}

/** The traffic split: a bar of champion and canary shares, a strip per shadow. */
function renderSplit(release: IRelease, options: IReleaseViewOptions): HTMLElement {
  const { trans } = options;
  const box = el('div', 'jp-ship-split-box');
  const segments = splitSegments(release);
  const bar = el('div', 'jp-ship-split');
  bar.setAttribute('role', 'img');
  const words = segments.map(s =>
    s.role === 'champion'
      ? trans.__('v%1 champion %2', s.version, formatShare(s.percent))
      : trans.__('v%1 canary %2', s.version, formatShare(s.percent))
  );
  bar.setAttribute('aria-label', trans.__('Traffic split: %1', words.join(', ')));
  segments.forEach((s, i) => {
    const segment = el('div', `jp-ship-split-segment jp-ship-mod-${s.role}`);
    segment.dataset.version = s.version;
    segment.dataset.percent = String(s.percent);
    segment.style.width = `${s.percent}%`;
    segment.title = words[i];
    if (s.labelled) {
      segment.append(el('span', 'jp-ship-split-label', `v${s.version} · ${formatShare(s.percent)}`));
    }
    bar.append(segment);
  });
  box.append(bar);

  const legend = el('div', 'jp-ship-split-legend');
  const item = (role: string, text: string, title?: string): HTMLElement => {
    const span = el('span', 'jp-ship-split-item');
    span.append(el('span', `jp-ship-split-swatch jp-ship-mod-${role}`), text);
    if (title) {
      span.title = title;
    }
    return span;
  };
  legend.append(
    item('champion', trans.__('v%1 champion %2', release.champion, formatShare(segments.find(s => s.role === 'champion')?.percent ?? 0)))
  );
  const canary = release.canary;
  if (canary) {
    legend.append(
      item(
        'canary',
        trans.__('v%1 canary %2', canary.version, formatShare(canary.percent)),
        trans.__('Steps %1; this step since %2', formatSteps(canary.steps, canary.percent), formatTime(canary.started))
      )
    );
  }
  box.append(legend);
  if (canary) {
    box.append(
      el(
        'div',
        'jp-ship-split-steps',
        trans.__('steps %1 · since %2', formatSteps(canary.steps, canary.percent), formatTime(canary.started))
      )
    );
  }
  for (const version of release.shadows) {
    const strip = el('div', 'jp-ship-split-shadow');
    strip.dataset.version = version;
    strip.title = trans.__('v%1 scores a copy of every request; its answers are logged, never sent', version);
    strip.append(el('span', 'jp-ship-split-label', trans.__('v%1 shadow · a copy of every request', version)));
    const remove = el('button', 'jp-ship-button jp-ship-mod-small jp-ship-release-unshadow', '×');
    remove.title = trans.__('Stop shadowing v%1', version);
    remove.setAttribute('aria-label', remove.title);
    remove.addEventListener('click', () => options.onRequest({ action: 'unshadow', version }));
    strip.append(remove);
    box.append(strip);
  }
  box.append(
    el(
      'div',
      'jp-ship-note jp-ship-release-running',
      release.running
        ? trans.__('A local ship serve follows this release: changes take effect at once.')
        : trans.__('Not served locally: the release applies when the service is served.')
    )
  );
  return box;
}

/** Promote, Roll back, Start canary…, Add shadow… (disabled, with the reason, when they cannot apply). */
function renderActions(release: IRelease, options: IReleaseViewOptions): HTMLElement {
  const { trans } = options;
  const actions = el('div', 'jp-ship-release-actions');
  const button = (
    action: 'promote' | 'rollback' | 'canary' | 'shadow',
    label: string,
    enabled: boolean,
    title: string
  ): HTMLButtonElement => {
    const b = el('button', `jp-ship-button jp-ship-release-${action}`, label);
    b.disabled = !enabled;
    b.title = title;
    b.addEventListener('click', () => options.onRequest({ action }));
    return b;
  };
  const canary = release.canary;
  const noCanary = trans.__('No canary: start one first.');
  const candidates = canaryCandidates(release);
  const shadows = shadowCandidates(release);
  actions.append(
    button(
      'promote',
      trans.__('Promote'),
      canary !== null,
      canary ? trans.__('Make v%1 the champion: it answers every request', canary.version) : noCanary
    ),
    button(
      'rollback',
      trans.__('Roll back'),
      canary !== null,
      canary ? trans.__('Stop the canary v%1: v%2 answers every request', canary.version, release.champion) : noCanary
    ),
    button(
      'canary',
      trans.__('Start canary…'),
      canary === null && candidates.length > 0,
      canary
        ? trans.__('v%1 is the canary: promote it or roll it back first', canary.version)
        : candidates.length
          ? trans.__('Send a share of the requests to another version, watched against the champion')
          : trans.__('No other version built: build one from the notebook first')
    ),
    button(
      'shadow',
      trans.__('Add shadow…'),
      shadows.length > 0,
      shadows.length
        ? trans.__('Score a copy of every request with another version, off the answering path')
        : trans.__('Every built version takes part already')
    )
  );
  return actions;
}

/** The canary's live comparison with the champion: status, reason, each check. */
function renderComparison(release: IRelease, options: IReleaseViewOptions): HTMLElement {
  const { trans } = options;
  const comparison = release.comparison!;
  const summary = el('span', '');
  summary.append(
    trans.__('Canary v%1 against v%2', comparison.version, release.champion),
    ' ',
    el('span', `jp-ship-release-status jp-ship-mod-${comparison.status}`, statusLabel(trans, comparison.status))
  );
  const details = options.expanded.details(`${options.key}/comparison`, summary);
  details.classList.add('jp-ship-release-comparison');
  details.dataset.status = comparison.status;
  if (comparison.reason) {
    // The gate's reason names every check: three lines until clicked.
    const key = `${options.key}/reason`;
    const reason = el('p', 'jp-ship-note jp-ship-release-reason', comparison.reason);
    reason.classList.toggle('jp-ship-mod-expanded', options.expanded.isOpen(key));
    reason.title = trans.__('Click to show or fold the whole reason');
    reason.addEventListener('click', () => {
      const open = !reason.classList.contains('jp-ship-mod-expanded');
      reason.classList.toggle('jp-ship-mod-expanded', open);
      options.expanded.setOpen(key, open);
    });
    details.append(reason);
  }
  details.append(checksTable(trans, comparison.checks));
  return details;
}

function statusLabel(trans: TranslationBundle, status: string): string {
  switch (status) {
    case 'passing':
      return trans.__('passing');
    case 'failing':
      return trans.__('failing');
    case 'waiting':
      return trans.__('waiting for data');
  }
  return status;
}

/** Checks as rows: metric, champion, canary, result; under each, its test, p, n and threshold. */
export function checksTable(trans: TranslationBundle, checks: IReleaseCheck[]): HTMLElement {
  if (!checks.length) {
    return el('p', 'jp-ship-note', trans.__('No checks yet.'));
  }
  const table = headedTable('jp-ship-table jp-ship-checks', [
    trans.__('Check'),
    trans.__('Champion'),
    trans.__('Canary'),
    trans.__('Result')
  ]);
  for (const check of checks) {
    const text = formatCheck(trans, check);
    const row = el('tr', `jp-ship-check jp-ship-mod-${text.state}`);
    row.dataset.metric = check.metric;
    row.title = text.summary;
    row.append(
      el('td', 'jp-ship-check-metric', text.metric),
      el('td', 'jp-ship-num', text.champion),
      el('td', 'jp-ship-num', text.canary),
      el('td', `jp-ship-check-state jp-ship-mod-${text.state}`, text.stateLabel)
    );
    const detail = el('tr', 'jp-ship-check-detail');
    const cell = el('td', '', text.detail);
    cell.colSpan = 4;
    detail.append(cell);
    table.tBodies[0].append(row, detail);
  }
  return scrolling(table);
}

/** A shadow's answers against the champion's. */
function renderShadow(release: IRelease, report: IShadowReport, options: IReleaseViewOptions): HTMLElement {
  const { trans } = options;
  const summary = trans.__(
    'Shadow v%1: %2 agreement · %3 copies',
    report.version,
    report.agreement === null ? '—' : formatPercent(report.agreement),
    report.requests
  );
  const details = options.expanded.details(`${options.key}/shadow-${report.version}`, summary);
  details.classList.add('jp-ship-shadow-report');
  details.dataset.version = report.version;
  const list = el('dl', 'jp-ship-details');
  const add = (label: string, value: string, className = ''): void => {
    list.append(el('dt', '', label), el('dd', className, value));
  };
  const agreement = report.agreement === null ? '—' : formatPercent(report.agreement);
  add(
    trans.__('Agreement with v%1', release.champion),
    report.rows === undefined ? agreement : trans._n('%2 over %1 row', '%2 over %1 rows', report.rows, agreement),
    'jp-ship-shadow-agreement'
  );
  add(
    trans.__('Copies scored'),
    (report.since ? trans.__('%1 since %2', report.requests, formatTime(report.since)) : String(report.requests)) +
      (report.dropped ? trans.__(' · %1 answered without a copy', report.dropped) : '')
  );
  add(trans.__('Flips'), flipsText(trans, report.flips), 'jp-ship-shadow-flips');
  add(trans.__('Latency p50'), formatPair(report.latency_p50_ms, 'ms'));
  add(trans.__('Latency p99'), formatPair(report.latency_p99_ms, 'ms'));
  add(trans.__('Error rate'), formatPair(report.error_rate, 'share'));
  details.append(list);
  if (report.by_class.length) {
    details.append(el('div', 'jp-ship-subheading', trans.__('Per predicted class (champion’s)')));
    details.append(agreementTable(trans, [trans.__('Class')], report.by_class.map(s => ({ labels: [s.value], slice: s }))));
  }
  if (report.by_feature.length) {
    details.append(el('div', 'jp-ship-subheading', trans.__('Per category')));
    details.append(
      agreementTable(
        trans,
        [trans.__('Feature'), trans.__('Value')],
        report.by_feature.map(s => ({ labels: [s.feature, s.value], slice: s }))
      )
    );
  }
  return details;
}

/** Slices with their requests and agreement, a bar for the agreement. */
function agreementTable(
  trans: TranslationBundle,
  labels: string[],
  rows: { labels: string[]; slice: IAgreementSlice }[]
): HTMLElement {
  const table = headedTable('jp-ship-table jp-ship-agreement', [...labels, trans.__('Rows'), trans.__('Agreement')]);
  for (const { labels: cells, slice } of rows) {
    const tr = el('tr', 'jp-ship-agreement-row');
    for (const text of cells) {
      const td = el('td', 'jp-ship-agreement-label', text);
      td.title = text;
      tr.append(td);
    }
    const agreement = el('td', 'jp-ship-num');
    if (slice.agreement !== null) {
      const bar = el('span', 'jp-ship-agreement-bar');
      const fill = el('span', 'jp-ship-agreement-fill');
      fill.style.width = `${Math.max(0, Math.min(1, slice.agreement)) * 100}%`;
      bar.append(fill);
      agreement.append(bar, ' ', formatPercent(slice.agreement));
    } else {
      agreement.append('—');
    }
    tr.append(el('td', 'jp-ship-num', String(slice.requests)), agreement);
    table.tBodies[0].append(tr);
  }
  return scrolling(table);
}

/** The decisions, newest first: what, when, by whom, why, and the evidence. */
function renderDecisions(release: IRelease, options: IReleaseViewOptions): HTMLElement {
  const { trans } = options;
  const decisions = release.decisions;
  const details = options.expanded.details(
    `${options.key}/decisions`,
    trans.__('Decisions (%1)', decisions.length)
  );
  details.classList.add('jp-ship-release-decisions');
  if (!decisions.length) {
    details.append(el('p', 'jp-ship-note', trans.__('No decisions yet: start a canary or add a shadow.')));
    return details;
  }
  const all = `${options.key}/decisions-all`;
  const shown = options.expanded.isOpen(all) ? decisions.length : (options.decisionsShown ?? 5);
  const list = el('ol', 'jp-ship-decisions');
  decisions.forEach((decision, i) => {
    const item = renderDecision(decision, options);
    if (i >= shown) {
      item.hidden = true;
    }
    list.append(item);
  });
  details.append(list);
  if (decisions.length > shown) {
    const more = el('button', 'jp-ship-button jp-ship-mod-small jp-ship-decisions-more', trans.__('Show all %1', decisions.length));
    more.addEventListener('click', () => {
      options.expanded.setOpen(all, true);
      for (const item of Array.from(list.children) as HTMLElement[]) {
        item.hidden = false;
      }
      more.remove();
    });
    details.append(more);
  }
  return details;
}

function renderDecision(decision: IReleaseDecision, options: IReleaseViewOptions): HTMLElement {
  const { trans } = options;
  const item = el('li', `jp-ship-decision jp-ship-mod-${decision.action}`);
  item.dataset.action = decision.action;
  item.dataset.automatic = String(decision.automatic);
  const head = el('div', 'jp-ship-decision-head');
  const time = el('span', 'jp-ship-decision-time', formatTime(decision.time));
  time.title = decision.time;
  if (decision.aliases) {
    item.title = trans.__('MLflow aliases: %1', decision.aliases);
  }
  head.append(
    el('span', 'jp-ship-decision-title', decisionTitle(trans, decision)),
    el('span', `jp-ship-decision-by jp-ship-mod-${decision.automatic ? 'automatic' : 'manual'}`, decisionBy(trans, decision)),
    time
  );
  item.append(head);
  if (decision.reason) {
    item.append(el('div', 'jp-ship-decision-reason', decision.reason));
  }
  if (decision.evidence.length) {
    const evidence = options.expanded.details(
      `${options.key}/decision-${decision.time}-${decision.action}-${decision.version}`,
      trans._n('Evidence (%1 check)', 'Evidence (%1 checks)', decision.evidence.length),
      false
    );
    evidence.classList.add('jp-ship-decision-evidence');
    evidence.append(checksTable(trans, decision.evidence));
    item.append(evidence);
  }
  return item;
}
