/**
 * A service's retraining loop, drawn under its release in the Services panel: whether
 * `ship watch` runs, its back-off, and the loop's latest events newest first (trigger,
 * retraining with the gate's checks, back-off, release decisions), each with its time,
 * kind and message. DOM only: the words come from ../loop.ts.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { el, formatTime } from '../format';
import { EVENTS_SHOWN, eventText, formatRetrainCheck, loopSummary, newestFirst, retrainFacts } from '../loop';
import { ILoopEvent, ILoopStatus, IRetrainCheck } from '../tokens';
import { headedTable, scrolling } from './base';
import { ExpandedSections } from './release';

/** How a loop is drawn. */
export interface ILoopViewOptions {
  trans: TranslationBundle;
  /** Remembers open sections across renders (the panel re-reads every 10 s). */
  expanded: ExpandedSections;
  /** Tells this loop's sections from others' (the service's name). */
  key: string;
  /** Events listed before "Show all"; default 5. */
  eventsShown?: number;
}

/** The Loop section of one service: open when there is something to read. */
export function renderLoop(status: ILoopStatus, options: ILoopViewOptions): HTMLElement {
  const { trans } = options;
  const summary = loopSummary(trans, status);
  const head = el('span', '');
  head.append(
    trans.__('Loop'),
    ' ',
    el('span', `jp-ship-loop-state jp-ship-mod-${summary.backoff ? 'backoff' : summary.watcher}`, summary.stateLabel)
  );
  const details = options.expanded.details(`${options.key}/loop`, head, status.events.length > 0);
  details.classList.add('jp-ship-loop');
  details.dataset.watcher = summary.watcher;
  details.append(el('div', 'jp-ship-note jp-ship-loop-watcher', summary.watcherText));
  if (summary.backoff) {
    details.append(el('div', 'jp-ship-loop-backoff', summary.backoff));
  }
  if (summary.lastRetrain) {
    details.append(el('div', 'jp-ship-note jp-ship-loop-last', summary.lastRetrain));
  }
  details.append(renderEvents(status.events, options));
  return details;
}

/** The events, newest first; the first few shown, "Show all" for the rest. */
function renderEvents(events: ILoopEvent[], options: ILoopViewOptions): HTMLElement {
  const { trans } = options;
  const box = el('div', 'jp-ship-loop-events-box');
  if (!events.length) {
    box.append(
      el('p', 'jp-ship-note', trans.__('No events yet: ship retrain and ship watch write them here.'))
    );
    return box;
  }
  const ordered = newestFirst(events);
  const all = `${options.key}/loop-all`;
  const shown = options.expanded.isOpen(all) ? ordered.length : (options.eventsShown ?? EVENTS_SHOWN);
  const list = el('ol', 'jp-ship-loop-events');
  ordered.forEach((event, i) => {
    const item = renderEvent(event, options);
    if (i >= shown) {
      item.hidden = true;
    }
    list.append(item);
  });
  box.append(list);
  if (ordered.length > shown) {
    const more = el('button', 'jp-ship-button jp-ship-mod-small jp-ship-loop-more', trans.__('Show all %1', ordered.length));
    more.addEventListener('click', () => {
      options.expanded.setOpen(all, true);
      for (const item of Array.from(list.children) as HTMLElement[]) {
        item.hidden = false;
      }
      more.remove();
    });
    box.append(more);
  }
  return box;
}

function renderEvent(event: ILoopEvent, options: ILoopViewOptions): HTMLElement {
  const { trans } = options;
  const text = eventText(trans, event);
  const item = el('li', `jp-ship-loop-event jp-ship-mod-${text.tone}`);
  item.dataset.kind = event.kind;
  if (event.decision) {
    item.dataset.decision = event.decision;
  }
  const head = el('div', 'jp-ship-loop-event-head');
  const time = el('span', 'jp-ship-loop-time', formatTime(event.time));
  time.title = event.time;
  head.append(
    el('span', `jp-ship-loop-kind jp-ship-mod-${event.kind}`, text.kindLabel),
    el('span', 'jp-ship-loop-title', text.title),
    time
  );
  item.append(head);
  if (text.message) {
    // Long messages (a failure's traceback line, a trigger's figures): three lines until clicked.
    const key = `${options.key}/loop-message-${event.time}-${event.kind}`;
    const message = el('div', 'jp-ship-loop-message', text.message);
    message.classList.toggle('jp-ship-mod-expanded', options.expanded.isOpen(key));
    message.title = trans.__('Click to show or fold the whole message');
    message.addEventListener('click', () => {
      const open = !message.classList.contains('jp-ship-mod-expanded');
      message.classList.toggle('jp-ship-mod-expanded', open);
      options.expanded.setOpen(key, open);
    });
    item.append(message);
  }
  if (event.kind === 'retrain') {
    const facts = retrainFacts(trans, event);
    if (facts.length) {
      const list = el('ul', 'jp-ship-loop-facts');
      for (const fact of facts) {
        list.append(el('li', '', fact));
      }
      item.append(list);
    }
    if (event.checks?.length) {
      item.append(retrainChecksTable(trans, event.checks));
    }
  }
  return item;
}

/**
 * The gate's checks as rows: the check (its metric under it), champion, challenger, the
 * interval of their difference and the verdict; under each, its rows and reason.
 */
export function retrainChecksTable(trans: TranslationBundle, checks: IRetrainCheck[]): HTMLElement {
  const table = headedTable('jp-ship-table jp-ship-checks jp-ship-retrain-checks', [
    trans.__('Check'),
    trans.__('Champion'),
    trans.__('Challenger'),
    trans.__('Interval'),
    trans.__('Verdict')
  ]);
  table.tHead!.rows[0].cells[3].title = trans.__('The bootstrap interval of challenger − champion');
  for (const check of checks) {
    const text = formatRetrainCheck(trans, check);
    const row = el('tr', `jp-ship-check jp-ship-mod-${text.state}`);
    row.dataset.check = check.name;
    row.title = text.summary;
    const name = el('td', 'jp-ship-check-metric');
    name.append(el('div', 'jp-ship-retrain-check-name', text.name), el('div', 'jp-ship-retrain-metric', text.metric));
    const verdict = el('td', 'jp-ship-retrain-verdict');
    verdict.append(el('span', `jp-ship-check-state jp-ship-mod-${text.state}`, text.verdict));
    row.append(
      name,
      el('td', 'jp-ship-num', text.champion),
      el('td', 'jp-ship-num', text.challenger),
      el('td', 'jp-ship-num jp-ship-retrain-interval', text.interval),
      verdict
    );
    const detail = el('tr', 'jp-ship-check-detail');
    const cell = el('td', '', text.detail);
    cell.colSpan = 5;
    detail.append(cell);
    table.tBodies[0].append(row, detail);
  }
  return scrolling(table);
}
