import { TranslationBundle } from '@jupyterlab/translation';

import { getCostSummary } from '../api';
import { chart, CHART_WIDTH as WIDTH, svg, svgText, withLegend } from '../charts';
import { el, formatApproxMoney, formatNumber, formatSeconds, formatWhen } from '../format';
import { barPercent, scaleTop, timeColumns } from '../scales';
import { ICostSummary, IRunCostRow, IServiceCost } from '../tokens';
import { basisTag, headedTable, scrolling, ShipPanel } from './base';

/** The periods the selector offers; '' is everything recorded. */
const PERIODS = ['', '1h', '1d', '7d', '30d'];
/** At most this many runs in the chart (newest). */
const MAX_RUNS = 30;

/**
 * The Cost panel: what the runs of the notebook in focus cost (CPU seconds and memory
 * measured in the kernel, money estimated from the price table), what each service of
 * the workspace costs per 1,000 predictions (CPU measured by its serving processes,
 * money estimated), and the totals. Every figure is marked measured or estimated.
 */
export class CostPanel extends ShipPanel {
  constructor(trans: TranslationBundle) {
    super({
      trans,
      id: 'jp-ship-cost',
      className: 'jp-ship-cost',
      label: trans.__('Cost'),
      loading: trans.__('Loading cost…'),
      refreshTitle: trans.__('Re-read the runs and the services’ usage records')
    });
    this._since = el('select', 'jp-ship-select jp-ship-cost-since');
    this._since.title = trans.__('Only runs and usage in this period');
    for (const value of PERIODS) {
      const option = el('option', '', value ? trans.__('last %1', value) : trans.__('all time'));
      option.value = value;
      this._since.append(option);
    }
    this._since.addEventListener('change', () => void this.refresh());
    this.actions.prepend(this._since);
  }

  protected async load(notebook: string | null): Promise<void> {
    const summary = await getCostSummary(notebook, this._since.value || null);
    if (!this.isStale(notebook)) {
      this._render(summary, notebook);
    }
  }

  private _render(summary: ICostSummary, notebook: string | null): void {
    const trans = this.trans;
    const name = notebook ? notebook.split('/').pop()! : null;
    this.setStatus(
      name
        ? trans.__('%1 · prices in %2 from .ship/ship.toml', name, summary.currency)
        : trans.__('Workspace %1 · prices in %2', summary.workspace, summary.currency)
    );
    const parts: HTMLElement[] = [this._totals(summary, name)];
    for (const note of summary.notes) {
      parts.push(el('p', 'jp-ship-note', note));
    }
    parts.push(el('h4', 'jp-ship-subheading', trans.__('Per run of this notebook')));
    parts.push(this._runs(summary, notebook));
    parts.push(el('h4', 'jp-ship-subheading', trans.__('Per service')));
    if (summary.services.length) {
      for (const service of summary.services) {
        parts.push(this._service(service));
      }
    } else {
      parts.push(
        el(
          'p',
          'jp-ship-empty',
          trans.__(
            'No services yet: build one from a notebook (Build a Service from This Notebook) and serve it; its processes record the CPU they use.'
          )
        )
      );
    }
    this.body.replaceChildren(...parts);
  }

  private _totals(summary: ICostSummary, notebook: string | null): HTMLElement {
    const trans = this.trans;
    const t = summary.totals;
    const currency = summary.currency;
    const box = el('dl', 'jp-ship-details jp-ship-cost-totals');
    const add = (label: string, ...values: (string | HTMLElement)[]): void => {
      const dd = el('dd', '');
      dd.append(...values);
      box.append(el('dt', '', label), dd);
    };
    add(
      notebook ? trans._n('%1 run', '%1 runs', t.runs.count) : trans._n('%1 run (all notebooks)', '%1 runs (all notebooks)', t.runs.count),
      trans.__('%1 CPU', formatSeconds(t.runs.cpu_s)),
      ' ',
      basisTag(trans, true),
      ' · ',
      formatApproxMoney(t.runs.amount, currency),
      ' ',
      basisTag(trans, false)
    );
    add(
      trans._n('%1 service', '%1 services', t.services.count),
      trans.__('%1 CPU, %2 predictions', formatSeconds(t.services.cpu_s), t.services.predictions.toLocaleString()),
      ' ',
      basisTag(trans, true),
      ' · ',
      formatApproxMoney(t.services.amount, currency),
      ' ',
      basisTag(trans, false)
    );
    const total = el('strong', 'jp-ship-cost-total', formatApproxMoney(t.amount, currency));
    add(trans.__('Total'), total, ' ', basisTag(trans, false));
    return box;
  }

  /** Estimated cost per run, newest on top, each bar labelled with its measured CPU. */
  private _runs(summary: ICostSummary, notebook: string | null): HTMLElement {
    const trans = this.trans;
    const runs = summary.runs.slice(0, MAX_RUNS);
    if (!runs.length) {
      return el(
        'p',
        'jp-ship-empty',
        notebook
          ? trans.__(
              'No tracked runs of this notebook yet: put %1 on the first line of a training cell (or use the Ship button in the cell toolbar) and run it; its CPU time and cost are measured.',
              '%%ship track'
            )
          : trans.__('Open a notebook to see the cost of its runs.')
      );
    }
    const top = scaleTop(runs.map(r => r.amount ?? 0));
    const chart = el('div', 'jp-ship-bars jp-ship-cost-runs');
    const legend = el('div', 'jp-ship-legend');
    legend.append(
      el('span', '', trans.__('bar: money')),
      basisTag(trans, false),
      el('span', '', trans.__('· CPU s')),
      basisTag(trans, true)
    );
    chart.append(legend);
    for (const run of runs) {
      chart.append(this._runBar(run, top, summary.currency));
    }
    if (summary.runs.length > runs.length) {
      chart.append(
        el('p', 'jp-ship-note', trans.__('The newest %1 of %2 runs.', runs.length, summary.runs.length))
      );
    }
    return chart;
  }

  private _runBar(run: IRunCostRow, top: number, currency: string): HTMLElement {
    const trans = this.trans;
    const row = el('div', 'jp-ship-bar-row jp-ship-cost-run');
    row.dataset.run = run.id;
    if (!run.written) {
      row.classList.add('jp-ship-mod-pending');
    }
    const head = el('div', 'jp-ship-bar-head');
    const name = el('span', 'jp-ship-bar-name', run.name);
    name.title = `${run.name} · ${run.experiment} · ${new Date(run.start_time_ms).toLocaleString()}`;
    const cpu = run.cpu_s === null ? '—' : trans.__('%1 CPU', formatSeconds(run.cpu_s));
    const label = el(
      'span',
      'jp-ship-bar-label',
      `${cpu} · ${run.amount === null ? '—' : formatApproxMoney(run.amount, run.currency ?? currency)}`
    );
    label.title = [
      trans.__('measured: %1', run.measured.join(', ') || '—'),
      trans.__('wall %1, peak memory %2 MB', formatSeconds(run.wall_s), formatNumber(run.peak_memory_mb)),
      run.basis ?? ''
    ].join('\n');
    head.append(name, el('span', 'jp-ship-bar-when', formatWhen(trans, run.start_time_ms)), label);
    const track = el('div', 'jp-ship-bar-track');
    const bar = el('div', 'jp-ship-bar');
    bar.style.width = `${barPercent(run.amount, top)}%`;
    track.append(bar);
    row.append(head, track);
    return row;
  }

  private _service(service: IServiceCost): HTMLElement {
    const trans = this.trans;
    const section = el('section', 'jp-ship-cost-service');
    section.dataset.service = service.name;
    const heading = el('h3', 'jp-ship-service-name');
    const title = el('span', 'jp-ship-service-title', service.name);
    title.title = service.name;
    heading.append(title);
    section.append(heading);
    const box = el('dl', 'jp-ship-details');
    const add = (label: string, value: string, measured: boolean): void => {
      const dd = el('dd', 'jp-ship-value', value);
      dd.append(' ', basisTag(trans, measured));
      box.append(el('dt', '', label), dd);
    };
    if (!service.records) {
      section.append(
        el(
          'p',
          'jp-ship-empty',
          trans.__('Not served yet: start it (Services panel) and send it requests; its serving processes record their CPU use every few seconds.')
        )
      );
      return section;
    }
    add(trans.__('CPU / 1k predictions'), perK(trans, service.cpu_s_per_1k_predictions, 's'), true);
    add(
      trans.__('Money / 1k predictions'),
      service.amount_per_1k_predictions === null ? '—' : formatApproxMoney(service.amount_per_1k_predictions, service.currency),
      false
    );
    add(trans.__('Predictions'), service.predictions.toLocaleString(), true);
    add(trans.__('CPU'), trans.__('%1 (start-up %2)', formatSeconds(service.cpu_s), formatSeconds(service.startup_cpu_s)), true);
    add(trans.__('Money'), formatApproxMoney(service.amount, service.currency), false);
    section.append(box);
    if (service.series.length > 1) {
      section.append(this._series(service));
    }
    if (service.versions.length > 1) {
      const table = headedTable('jp-ship-table', [
        trans.__('Version'),
        trans.__('Predictions'),
        trans.__('CPU / 1k'),
        trans.__('Money / 1k')
      ]);
      for (const v of service.versions) {
        const tr = el('tr', '');
        tr.append(
          el('td', '', `v${v.version}`),
          el('td', 'jp-ship-num', v.predictions.toLocaleString()),
          el('td', 'jp-ship-num', perK(trans, v.cpu_s_per_1k_predictions, 's')),
          el('td', 'jp-ship-num', v.amount_per_1k_predictions === null ? '—' : formatApproxMoney(v.amount_per_1k_predictions, service.currency))
        );
        table.tBodies[0].append(tr);
      }
      section.append(scrolling(table));
    }
    const basis = el('p', 'jp-ship-note', service.basis);
    section.append(basis);
    for (const note of service.notes) {
      section.append(el('p', 'jp-ship-note', note));
    }
    return section;
  }

  /** Estimated money per time bucket, as columns. */
  private _series(service: IServiceCost): HTMLElement {
    const trans = this.trans;
    const points = service.series;
    const height = 50;
    const bottom = height - 12;
    const top = scaleTop(points.map(p => p.amount));
    const first = Date.parse(points[0].start);
    const last = Date.parse(points[points.length - 1].end);
    const places = timeColumns(
      points.map(p => ({ start: Date.parse(p.start), end: Date.parse(p.end) })),
      WIDTH
    );
    const columns = chart(
      'jp-ship-cost-series',
      height,
      trans.__('Estimated money per %1', formatSeconds(service.bucket_s))
    );
    points.forEach((p, i) => {
      const { x, width: w } = places[i];
      const h = Math.max(0.5, ((bottom - 2) * p.amount) / top);
      columns.append(
        svg(
          'rect',
          { x: x.toFixed(1), y: (bottom - h).toFixed(1), width: w.toFixed(1), height: h.toFixed(1), class: 'jp-ship-bar-svg' },
          trans.__(
            '%1: %2 predictions, %3 CPU (measured), %4 (estimated)',
            new Date(p.start).toLocaleTimeString(),
            p.predictions,
            formatSeconds(p.cpu_s),
            formatApproxMoney(p.amount, service.currency)
          )
        )
      );
    });
    const axis = (x: number, anchor: string, text: string): SVGTextElement =>
      svgText({ x, y: height - 1, class: 'jp-ship-chart-axis', 'text-anchor': anchor }, text);
    columns.append(
      svg('line', { x1: 0, x2: WIDTH, y1: bottom, y2: bottom, class: 'jp-ship-chart-baseline' }),
      axis(0, 'start', new Date(first).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
      axis(WIDTH, 'end', new Date(last).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }))
    );
    return withLegend(
      columns,
      el('span', '', trans.__('money per %1', formatSeconds(service.bucket_s))),
      basisTag(trans, false)
    );
  }

  private readonly _since: HTMLSelectElement;
}

function perK(trans: TranslationBundle, value: number | null, unit: string): string {
  return value === null ? trans.__('— (no predictions)') : `${formatNumber(value)} ${unit}`;
}
