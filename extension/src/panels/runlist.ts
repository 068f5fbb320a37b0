/**
 * The DOM of the Experiments panel's rows and of a run's expanded detail.
 *
 * Plain elements with textContent (never HTML from the server): a list of 1,000
 * runs is about 12,000 nodes and renders in tens of milliseconds; rows off screen
 * skip layout through `content-visibility` (base.css).
 */
import { TranslationBundle } from '@jupyterlab/translation';

import {
  el,
  formatCost,
  formatData,
  formatMoney,
  formatNumber,
  formatPairs,
  formatSeconds,
  formatWhen
} from '../format';
import { IRun, IRunDetail } from '../tokens';

/** What a row's detail can ask the panel to do. */
export interface IRunActions {
  openSnapshot(run: IRun): void;
}


/** The key a selection survives by: the record id stays when a pending run is written. */
export function selectionKey(run: IRun): string {
  return run.record_id ?? run.id;
}

/** A status as the user reads it: pending runs say so. */
export function statusLabel(trans: TranslationBundle, run: IRun): string {
  let status: string;
  switch (run.status) {
    case 'FINISHED':
      status = trans.__('finished');
      break;
    case 'FAILED':
      status = trans.__('failed');
      break;
    case 'KILLED':
      status = trans.__('killed');
      break;
    case 'RUNNING':
      status = trans.__('running');
      break;
    default:
      status = run.status.toLowerCase();
  }
  return run.written ? status : trans.__('%1, pending', status);
}

/** One run: select box, status, name, when; metrics; params; data, cost. */
export function renderRow(
  trans: TranslationBundle,
  run: IRun,
  selected: boolean,
  now: number
): HTMLLIElement {
  const row = el('li', 'jp-ship-run');
  row.dataset.id = run.id;
  row.dataset.key = selectionKey(run);
  if (!run.written) {
    row.classList.add('jp-ship-mod-pending');
  }

  const box = el('input', 'jp-ship-run-select');
  box.type = 'checkbox';
  box.checked = selected;
  box.title = trans.__('Select to compare');
  box.setAttribute('aria-label', trans.__('Select run %1 to compare', run.name));

  const main = el('div', 'jp-ship-run-main');
  const title = el('div', 'jp-ship-run-title');
  const status = el('span', `jp-ship-run-status jp-ship-status-${run.status.toLowerCase()}`);
  status.title = statusLabel(trans, run);
  const name = el('span', 'jp-ship-run-name', run.name || run.id);
  name.title = `${run.name}\n${trans.__('experiment: %1', run.experiment)}\n${run.id}`;
  const when = el('span', 'jp-ship-run-when', formatWhen(trans, run.start_time_ms, now));
  when.title = new Date(run.start_time_ms).toLocaleString();
  title.append(status, name, when);
  main.append(title);

  const metricKeys = Object.keys(run.metrics);
  if (metricKeys.length) {
    main.append(el('div', 'jp-ship-run-metrics', formatPairs(run.metrics, 4)));
  }
  if (Object.keys(run.params).length) {
    main.append(el('div', 'jp-ship-run-params', formatPairs(run.params, 4)));
  }
  const meta: string[] = [];
  if (run.data.length) {
    meta.push(
      formatData(run.data[0]) + (run.data.length > 1 ? ` +${run.data.length - 1}` : '')
    );
  }
  const cost = formatCost(trans, run.cost);
  if (cost) {
    meta.push(cost);
  }
  if (meta.length) {
    main.append(el('div', 'jp-ship-run-meta', meta.join(' · ')));
  }
  if (run.error) {
    main.append(el('div', 'jp-ship-run-error', run.error));
  } else if (!run.written && run.pending_reason) {
    main.append(
      el('div', 'jp-ship-run-error', trans.__('Not written yet: %1', run.pending_reason))
    );
  }
  row.append(box, main);
  return row;
}

function table(rows: [string, string][], className: string): HTMLTableElement {
  const node = el('table', className);
  for (const [key, value] of rows) {
    const tr = el('tr', '');
    tr.append(el('th', '', key), el('td', '', value));
    node.append(tr);
  }
  return node;
}

function section(title: string, ...content: Node[]): HTMLElement {
  const node = el('section', 'jp-ship-detail-section');
  node.append(el('h4', 'jp-ship-detail-heading', title), ...content);
  return node;
}

/** The expanded detail of one run: every param and metric, data, environment, cost. */
export function renderDetail(
  trans: TranslationBundle,
  run: IRunDetail,
  actions: IRunActions
): HTMLElement {
  const node = el('div', 'jp-ship-run-detail');
  const buttons = el('div', 'jp-ship-detail-actions');
  if (run.has_snapshot) {
    const open = el('button', 'jp-ship-button', trans.__('Open notebook snapshot'));
    open.title = trans.__('The notebook as it was saved when this run’s cell ran (read-only)');
    open.addEventListener('click', () => actions.openSnapshot(run));
    buttons.append(open);
  }
  if (run.url) {
    const link = el('a', 'jp-ship-link', trans.__('Open in MLflow'));
    link.href = run.url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    buttons.append(link);
  }
  node.append(buttons);

  const status = [
    [trans.__('Status'), statusLabel(trans, run)],
    [trans.__('Experiment'), run.experiment],
    [trans.__('Started'), new Date(run.start_time_ms).toLocaleString()],
    [trans.__('Run id'), run.run_id ?? trans.__('not in MLflow yet')]
  ] as [string, string][];
  node.append(table(status, 'jp-ship-detail-table'));
  if (run.error) {
    node.append(el('pre', 'jp-ship-run-error', run.error));
  }
  const params = Object.entries(run.params);
  if (params.length) {
    node.append(section(trans.__('Params'), table(params, 'jp-ship-detail-table')));
  }
  const metrics = Object.entries(run.metrics).map(
    ([k, v]) => [k, formatNumber(v)] as [string, string]
  );
  if (metrics.length) {
    node.append(section(trans.__('Metrics'), table(metrics, 'jp-ship-detail-table')));
  }
  if (run.data.length) {
    const rows = run.data.map(
      d =>
        [d.name, `${d.digest}${d.shape ? ` [${d.shape.join('×')}]` : ''}`] as [string, string]
    );
    node.append(section(trans.__('Data fingerprints'), table(rows, 'jp-ship-detail-table')));
  }
  if (run.cost) {
    const c = run.cost;
    const rows: [string, string][] = [
      [trans.__('Wall'), formatSeconds(c.wall_s)],
      [trans.__('CPU'), formatSeconds(c.cpu_s)],
      [trans.__('GPU'), formatSeconds(c.gpu_s)],
      [trans.__('Peak memory'), c.peak_memory_mb === null ? '—' : `${c.peak_memory_mb} MB`],
      [trans.__('Cost'), formatMoney(trans, c.amount, c.currency)]
    ];
    node.append(section(trans.__('Cost'), table(rows, 'jp-ship-detail-table')));
  }
  node.append(renderEnvironment(trans, run));
  if (run.cell_source !== null) {
    node.append(
      section(trans.__('Cell'), el('pre', 'jp-ship-code jp-ship-detail-code', run.cell_source))
    );
  }
  return node;
}

function renderEnvironment(trans: TranslationBundle, run: IRunDetail): HTMLElement {
  const env = run.environment;
  const rows: [string, string][] = [];
  if (env) {
    rows.push(
      [trans.__('Python'), env.python ?? '—'],
      [trans.__('Platform'), env.platform ?? '—']
    );
    if (env.package_count !== null) {
      rows.push([trans.__('Packages'), String(env.package_count)]);
    }
    const change = env.change;
    let text = trans.__('unknown');
    if (change) {
      const parts = [
        ...Object.entries(change.added).map(([k, v]) => `+${k} ${v}`),
        ...Object.entries(change.removed).map(([k, v]) => `-${k} ${v}`),
        ...Object.entries(change.changed).map(([k, [a, b]]) => `${k} ${a} → ${b}`)
      ];
      if (change.python_changed) {
        parts.unshift(trans.__('Python changed'));
      }
      text = change.previous_record === null
        ? trans.__('first run of the experiment')
        : parts.length
          ? parts.join(', ')
          : trans.__('unchanged');
    }
    rows.push([trans.__('Since previous run'), text]);
  }
  if (run.git?.commit) {
    const dirty = run.git.dirty ? trans.__(' (uncommitted changes)') : '';
    rows.push([trans.__('Git'), `${run.git.branch ?? ''} ${run.git.commit.slice(0, 10)}${dirty}`]);
  }
  return section(trans.__('Environment'), table(rows, 'jp-ship-detail-table'));
}
