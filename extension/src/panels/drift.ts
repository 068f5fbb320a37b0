import { TranslationBundle } from '@jupyterlab/translation';

import { getDrift, listServices } from '../api';
import { chart, CHART_WIDTH as WIDTH, svg, svgText, withLegend } from '../charts';
import { el, formatNumber, formatPercent, formatTime, formatWindow, truncate } from '../format';
import { binScale, linearScale, linePath, round, scaleTop, severity, shares } from '../scales';
import {
  ICategoricalBins,
  IDriftReport,
  IDriftWindow,
  IFeatureDrift,
  INumericBins
} from '../tokens';
import { headedTable, scrolling, ShipPanel } from './base';

/** The windows the selector offers; '' is the service's configured window. */
const WINDOWS = ['', '15m', '1h', '6h', '1d', '7d'];

/** The feature name the prediction's row carries in the table. */
const PREDICTION = '__prediction__';

/**
 * The Drift panel: for a service of the workspace, the current window of its
 * prediction log against the bundle's reference profile — dataset drift, each
 * feature's score, method and threshold, prediction drift and accuracy from feedback —
 * and each feature's score over the past windows as a heat strip (drifted cells in the
 * error colour). Clicking a feature shows its score over time against its threshold,
 * and the reference vs. current distribution.
 */
export class DriftPanel extends ShipPanel {
  constructor(trans: TranslationBundle) {
    super({
      trans,
      id: 'jp-ship-drift',
      className: 'jp-ship-drift',
      label: trans.__('Drift'),
      loading: trans.__('Loading services…'),
      refreshTitle: trans.__('Recompute drift from the prediction log')
    });
    this._service = el('select', 'jp-ship-select jp-ship-drift-service');
    this._service.title = trans.__('Service');
    this._service.addEventListener('change', () => {
      this._selected = null;
      void this.refresh();
    });
    this._window = el('select', 'jp-ship-select jp-ship-drift-window');
    this._window.title = trans.__('Window of traffic compared with the reference');
    for (const value of WINDOWS) {
      const option = el('option', '', value ? trans.__('last %1', value) : trans.__('configured window'));
      option.value = value;
      this._window.append(option);
    }
    this._window.addEventListener('change', () => void this.refresh());
    this.actions.prepend(this._service, this._window);
  }

  /** The service shown (its name), once the services are loaded. */
  get service(): string {
    return this._service.value;
  }

  /** Show the histogram of one feature (null: none). */
  selectFeature(feature: string | null): void {
    this._selected = feature === this._selected ? null : feature;
    if (this._report) {
      this._render(this._report);
    }
  }

  protected notebookChanged(): void {
    this._report = null;
    this._selected = null;
  }

  protected async load(notebook: string | null): Promise<void> {
    const trans = this.trans;
    const { services } = await listServices(notebook);
    if (this.isStale(notebook)) {
      return;
    }
    const current = this._service.value;
    const names = services.map(s => s.name);
    this._service.replaceChildren(
      ...names.map(name => {
        const option = el('option', '', name);
        option.value = name;
        return option;
      })
    );
    if (!names.length) {
      this._report = null;
      this.setStatus(
        trans.__(
          'No services yet: build one from a notebook (Build a Service from This Notebook, or %1) with a reference profile, then serve it.',
          '%ship build NAME --reference X_train'
        )
      );
      this.body.replaceChildren();
      return;
    }
    this._service.value = names.includes(current) ? current : names[0];
    const name = this._service.value;
    // A long name is clipped inside the narrow select: the tooltip has it whole.
    this._service.title = trans.__('Service: %1', name);
    const report = await getDrift(name, { window: this._window.value || null, notebook });
    if (this.isStale(notebook) || name !== this._service.value) {
      return;
    }
    this._report = report;
    this._render(report);
  }

  private _render(report: IDriftReport): void {
    const trans = this.trans;
    const features = report.features;
    if (report.reference.rows === null && report.reference.path === null) {
      this.setStatus(
        trans.__(
          'No reference profile in %1 v%2: build with --reference (%3) to compare its traffic with the training data.',
          report.service,
          report.version ?? '?',
          '%ship build NAME --reference X_train'
        )
      );
      this.body.replaceChildren(this._notes(report));
      return;
    }
    const window = formatWindow(report.window.length_s);
    this.setStatus(
      trans.__(
        '%1 v%2 · last %3: %4 rows vs %5 reference rows',
        report.service,
        report.version ?? '?',
        window,
        report.current_rows,
        report.reference.rows ?? '?'
      )
    );
    const parts: HTMLElement[] = [this._dataset(report)];
    if (report.current_rows === 0 && !report.history.some(w => w.rows > 0)) {
      parts.push(
        el(
          'p',
          'jp-ship-empty',
          trans.__(
            'No predictions in the log yet: start the service (Services panel) and send it requests; drift is computed per window of traffic.'
          )
        )
      );
    }
    parts.push(this._notes(report));
    if (report.history.length && features.length) {
      parts.push(el('h4', 'jp-ship-subheading', trans.__('Drift score over time')));
      parts.push(this._heatStrip(report));
    }
    parts.push(el('h4', 'jp-ship-subheading', trans.__('Features (current window)')));
    parts.push(this._table(report));
    const selected =
      this._selected === PREDICTION
        ? report.prediction
        : features.find(f => f.feature === this._selected) ?? null;
    if (selected) {
      parts.push(this._detail(report, selected));
    }
    if (report.performance) {
      const perf = report.performance;
      const box = el('dl', 'jp-ship-details jp-ship-drift-performance');
      box.append(
        el('dt', '', trans.__('Performance (feedback)')),
        el(
          'dd',
          '',
          trans.__('%1 %2 on %3 labelled predictions', perf.metric, formatNumber(perf.value), perf.labelled)
        ),
        el('dt', '', trans.__('Method')),
        el('dd', '', perf.method)
      );
      parts.push(box);
    }
    this.body.replaceChildren(...parts);
  }

  private _dataset(report: IDriftReport): HTMLElement {
    const trans = this.trans;
    const d = report.dataset;
    const box = el('div', `jp-ship-drift-dataset ${d.drifted ? 'jp-ship-mod-drift' : 'jp-ship-mod-ok'}`);
    const features = report.features.filter(f => f.status !== 'missing' && f.status !== 'new');
    const headline = d.drifted
      ? trans.__('Dataset drift: %1 of %2 features drifted', d.drifted_features.length, features.length)
      : trans.__('No dataset drift: %1 of %2 features drifted', d.drifted_features.length, features.length);
    box.append(el('strong', '', headline));
    box.append(
      el(
        'span',
        'jp-ship-drift-rule',
        trans.__(
          'share %1 %2 threshold %3 (%4)',
          formatPercent(d.share),
          d.drifted ? '≥' : '<',
          formatPercent(d.threshold),
          d.method
        )
      )
    );
    if (d.drifted_features.length) {
      box.append(el('span', 'jp-ship-drift-list', d.drifted_features.join(', ')));
    }
    return box;
  }

  private _notes(report: IDriftReport): HTMLElement {
    const list = el('ul', 'jp-ship-notes');
    for (const note of report.notes) {
      list.append(el('li', '', note));
    }
    return list;
  }

  /** Features × windows, oldest window on the left; a cell's shade is score / threshold. */
  private _heatStrip(report: IDriftReport): HTMLElement {
    const trans = this.trans;
    const windows = report.history;
    const features = report.features.filter(f => f.status !== 'missing');
    const rows: { name: string; label: string; threshold: number; method: string }[] =
      features.map(f => ({
        name: f.feature,
        label: f.feature,
        threshold: f.threshold,
        method: f.method
      }));
    const label = 78;
    const cell = 16;
    const gap = 1;
    const top = 4;
    const width = WIDTH - label;
    const step = width / windows.length;
    const height = top + rows.length * (cell + gap) + 16;
    const strip = chart('jp-ship-heatstrip', height, trans.__('Drift score per feature and window'));
    rows.forEach((row, i) => {
      const y = top + i * (cell + gap);
      const name = svgText(
        {
          x: label - 4,
          y: y + cell / 2,
          class: 'jp-ship-chart-label jp-ship-heatstrip-feature',
          'text-anchor': 'end',
          'dominant-baseline': 'central',
          'data-feature': row.name
        },
        truncate(row.label, 12),
        row.name
      );
      name.addEventListener('click', () => this.selectFeature(row.name));
      strip.append(name);
      windows.forEach((w, j) => {
        strip.append(
          this._cell(w, row, label + j * step, y, step - gap, cell)
        );
      });
    });
    const axis = top + rows.length * (cell + gap) + 11;
    const first = windows[0];
    const last = windows[windows.length - 1];
    strip.append(
      svgText({ x: label, y: axis, class: 'jp-ship-chart-axis' }, formatTime(first.start)),
      svgText({ x: WIDTH, y: axis, class: 'jp-ship-chart-axis', 'text-anchor': 'end' }, formatTime(last.end))
    );
    return withLegend(
      strip,
      swatch('jp-ship-swatch-ok'),
      el('span', '', trans.__('score ÷ threshold (darker: closer)')),
      swatch('jp-ship-swatch-drift'),
      el('span', '', trans.__('drifted')),
      swatch('jp-ship-swatch-none'),
      el('span', '', trans.__('no rows'))
    );
  }

  private _cell(
    w: IDriftWindow,
    row: { name: string; threshold: number; method: string },
    x: number,
    y: number,
    width: number,
    height: number
  ): SVGRectElement {
    const trans = this.trans;
    const { name: feature, threshold, method } = row;
    const score = w.scores[feature] ?? null;
    const drifted = w.drifted.includes(feature);
    const when = `${formatTime(w.start)}–${formatTime(w.end)}`;
    const tip =
      score === null
        ? trans.__('%1, %2: no rows', feature, when)
        : trans.__(
            '%1, %2: score %3 (threshold %4), %5 rows%6',
            feature,
            when,
            formatNumber(score),
            formatNumber(threshold),
            w.rows,
            drifted ? ' — ' + trans.__('drifted') : ''
          );
    const className =
      score === null ? 'jp-ship-heat-none' : drifted ? 'jp-ship-heat-drift' : 'jp-ship-heat-ok';
    const ratio = score === null ? 0 : severity(score, threshold, method);
    const rect = svg(
      'rect',
      {
        x: round(x),
        y,
        width: round(Math.max(1, width)),
        height,
        class: `jp-ship-heat ${className}`,
        'fill-opacity': score === null || drifted ? 1 : round(0.12 + 0.68 * ratio),
        'data-feature': feature,
        'data-drifted': drifted ? 'true' : 'false'
      },
      tip
    );
    rect.addEventListener('click', () => this.selectFeature(feature));
    return rect;
  }

  private _table(report: IDriftReport): HTMLElement {
    const trans = this.trans;
    const table = headedTable('jp-ship-table jp-ship-drift-table', [
      trans.__('Feature'),
      trans.__('Method'),
      trans.__('Score'),
      trans.__('Threshold'),
      trans.__('Status')
    ]);
    const body = table.tBodies[0];
    for (const feature of report.features) {
      body.append(this._row(feature, feature.feature, feature.feature));
    }
    if (report.prediction) {
      const tbody = el('tbody', 'jp-ship-drift-prediction');
      tbody.append(this._row(report.prediction, PREDICTION, trans.__('prediction')));
      table.append(tbody);
    }
    return scrolling(table);
  }

  private _row(f: IFeatureDrift, key: string, label: string): HTMLTableRowElement {
    const trans = this.trans;
    const tr = el('tr', `jp-ship-drift-row jp-ship-mod-${f.status}`);
    tr.dataset.feature = key;
    tr.dataset.status = f.status;
    if (key === this._selected) {
      tr.classList.add('jp-ship-mod-selected');
    }
    tr.title = f.note ?? trans.__('Show the reference and current distributions of %1', label);
    tr.addEventListener('click', () => this.selectFeature(key));
    const status = el('td', 'jp-ship-drift-status', statusLabel(trans, f.status));
    tr.append(
      el('td', 'jp-ship-drift-feature', label),
      el('td', '', f.method),
      el('td', 'jp-ship-num', formatNumber(f.score)),
      el('td', 'jp-ship-num', formatNumber(f.threshold)),
      status
    );
    return tr;
  }

  private _detail(report: IDriftReport, f: IFeatureDrift): HTMLElement {
    const trans = this.trans;
    const key = f === report.prediction ? PREDICTION : f.feature;
    const box = el('section', 'jp-ship-drift-detail');
    box.dataset.feature = key;
    const name = key === PREDICTION ? trans.__('prediction') : f.feature;
    box.append(el('h4', 'jp-ship-subheading', trans.__('%1: reference vs current', name)));
    const tests = el('ul', 'jp-ship-drift-tests');
    for (const t of f.tests) {
      const p = t.p_value === null ? '' : trans.__(', p = %1', formatNumber(t.p_value));
      const item = el(
        'li',
        t.drifted ? 'jp-ship-mod-drift' : '',
        trans.__('%1: %2 (threshold %3%4)', t.method, formatNumber(t.score), formatNumber(t.threshold), p)
      );
      tests.append(item);
    }
    if (f.note) {
      tests.append(el('li', 'jp-ship-note', f.note));
    }
    box.append(tests);
    if (key !== PREDICTION && report.history.length > 1) {
      box.append(this._scoreLine(report, f));
    }
    if (f.reference && f.current) {
      box.append(
        'edges' in f.reference
          ? this._numericHistogram(f.reference, f.current as INumericBins, f.drifted)
          : this._categoricalBars(f.reference, f.current as ICategoricalBins, f.drifted)
      );
    } else {
      box.append(el('p', 'jp-ship-empty', trans.__('No distribution to show: %1', statusLabel(trans, f.status))));
    }
    return box;
  }

  /** The feature's score per window, with its threshold as a dashed line. */
  private _scoreLine(report: IDriftReport, f: IFeatureDrift): SVGSVGElement {
    const trans = this.trans;
    const points = report.history.map(w => ({ w, score: w.scores[f.feature] ?? null }));
    const values = points.map(p => p.score).filter((s): s is number => s !== null);
    const top = scaleTop([f.threshold * 1.25, ...values]);
    const height = 70;
    const left = 30;
    const plot = height - 14;
    const x = linearScale(0, Math.max(1, points.length - 1), left, WIDTH - 4);
    const value = linearScale(0, top, plot, 4);
    const y = (v: number): number => round(value(v));
    const line = chart('jp-ship-scoreline', height, trans.__('%1 score per window', f.feature));
    line.append(
      svg('line', { x1: left, x2: WIDTH - 4, y1: plot, y2: plot, class: 'jp-ship-chart-baseline' }),
      svg(
        'line',
        { x1: left, x2: WIDTH - 4, y1: y(f.threshold), y2: y(f.threshold), class: 'jp-ship-chart-threshold' },
        trans.__('threshold %1', formatNumber(f.threshold))
      ),
      svgText(
        { x: left - 3, y: y(f.threshold), class: 'jp-ship-chart-axis', 'text-anchor': 'end', 'dominant-baseline': 'central' },
        formatNumber(f.threshold)
      ),
      svgText({ x: left, y: height - 2, class: 'jp-ship-chart-axis' }, formatTime(report.history[0].start)),
      svgText(
        { x: WIDTH - 4, y: height - 2, class: 'jp-ship-chart-axis', 'text-anchor': 'end' },
        formatTime(report.history[report.history.length - 1].end)
      )
    );
    const path = linePath(points.map((p, i) => (p.score === null ? null : { x: x(i), y: y(p.score) })));
    line.append(svg('path', { d: path, class: 'jp-ship-chart-line' }));
    points.forEach((p, i) => {
      if (p.score !== null) {
        const drifted = p.w.drifted.includes(f.feature);
        line.append(
          svg(
            'circle',
            { cx: round(x(i)), cy: y(p.score), r: drifted ? 3 : 2, class: drifted ? 'jp-ship-point-drift' : 'jp-ship-point' },
            `${formatTime(p.w.end)}: ${formatNumber(p.score)}`
          )
        );
      }
    });
    return line;
  }

  /** Overlaid bars: the share of rows per bin, reference and current. */
  private _numericHistogram(reference: INumericBins, current: INumericBins, drifted: boolean): HTMLElement {
    const trans = this.trans;
    const height = 90;
    const bottom = height - 14;
    const left = 4;
    const right = WIDTH - 4;
    const edges = reference.edges;
    const bins = Math.max(0, Math.min(reference.counts.length, current.counts.length, edges.length - 1));
    const ref = shares(reference.counts.slice(0, bins));
    const cur = shares(current.counts.slice(0, bins));
    // Bars on the value axis when the edges allow it (density: share / width), else equal slots.
    const scale = binScale(edges, bins, left, right);
    const xs = scale.x;
    const refD = scale.heights(ref);
    const curD = scale.heights(cur);
    const top = scaleTop([...refD, ...curD]);
    const histogram = chart('jp-ship-histogram', height, trans.__('Reference and current distributions'));
    const bar = (values: number[], shareOf: number[], className: string, who: string): void => {
      values.forEach((v, i) => {
        const h = ((bottom - 4) * v) / top;
        histogram.append(
          svg(
            'rect',
            {
              x: round(xs(i)),
              y: round(bottom - h),
              width: round(Math.max(0.5, xs(i + 1) - xs(i) - (bins > 40 ? 0 : 0.5))),
              height: round(h),
              class: className
            },
            trans.__('%1 [%2, %3): %4 of rows', who, formatNumber(edges[i]), formatNumber(edges[i + 1]), formatPercent(shareOf[i]))
          )
        );
      });
    };
    bar(refD, ref, 'jp-ship-hist-ref', trans.__('reference'));
    bar(curD, cur, `jp-ship-hist-cur${drifted ? ' jp-ship-mod-drift' : ''}`, trans.__('current'));
    histogram.append(
      svg('line', { x1: left, x2: right, y1: bottom, y2: bottom, class: 'jp-ship-chart-baseline' }),
      svgText({ x: left, y: height - 2, class: 'jp-ship-chart-axis' }, formatNumber(edges[0])),
      svgText({ x: right, y: height - 2, class: 'jp-ship-chart-axis', 'text-anchor': 'end' }, formatNumber(edges[bins]))
    );
    return this._histogramBox(histogram, drifted);
  }

  /** Paired horizontal bars per category: the share of rows, reference and current. */
  private _categoricalBars(reference: ICategoricalBins, current: ICategoricalBins, drifted: boolean): HTMLElement {
    const trans = this.trans;
    const names = reference.categories;
    const ref = shares(reference.counts);
    const curByName = new Map<string, number>();
    const curShares = shares(current.counts);
    current.categories.forEach((c, i) => curByName.set(c, curShares[i]));
    const rows = names.slice(0, 20);
    const label = 70;
    const band = 14;
    const height = rows.length * (band + 3) + 4;
    const top = scaleTop([...ref, ...curShares]);
    const scale = (v: number): number => ((WIDTH - label - 40) * v) / top;
    const bars = chart(
      'jp-ship-histogram jp-ship-mod-categorical',
      height,
      trans.__('Reference and current distributions')
    );
    rows.forEach((name, i) => {
      const y = 2 + i * (band + 3);
      const r = ref[i] ?? 0;
      const c = curByName.get(name) ?? 0;
      bars.append(
        svgText(
          { x: label - 4, y: y + band / 2, class: 'jp-ship-chart-label', 'text-anchor': 'end', 'dominant-baseline': 'central' },
          truncate(name, 11),
          name
        ),
        svg('rect', { x: label, y, width: round(scale(r)), height: band / 2, class: 'jp-ship-hist-ref' }, trans.__('reference %1: %2', name, formatPercent(r))),
        svg(
          'rect',
          { x: label, y: y + band / 2, width: round(scale(c)), height: band / 2, class: `jp-ship-hist-cur${drifted ? ' jp-ship-mod-drift' : ''}` },
          trans.__('current %1: %2', name, formatPercent(c))
        ),
        svgText(
          { x: label + round(Math.max(scale(r), scale(c))) + 3, y: y + band / 2, class: 'jp-ship-chart-axis', 'dominant-baseline': 'central' },
          `${formatPercent(r)} → ${formatPercent(c)}`
        )
      );
    });
    return this._histogramBox(bars, drifted);
  }

  private _histogramBox(histogram: SVGSVGElement, drifted: boolean): HTMLElement {
    const trans = this.trans;
    return withLegend(
      histogram,
      swatch('jp-ship-swatch-ref'),
      el('span', '', trans.__('reference (training)')),
      swatch(drifted ? 'jp-ship-swatch-drift' : 'jp-ship-swatch-cur'),
      el('span', '', trans.__('current window'))
    );
  }

  private readonly _service: HTMLSelectElement;
  private readonly _window: HTMLSelectElement;
  private _report: IDriftReport | null = null;
  private _selected: string | null = null;
}

function statusLabel(trans: TranslationBundle, status: IFeatureDrift['status']): string {
  switch (status) {
    case 'ok':
      return trans.__('ok');
    case 'drift':
      return trans.__('drift');
    case 'empty':
      return trans.__('no rows');
    case 'missing':
      return trans.__('missing in traffic');
    case 'new':
      return trans.__('not in reference');
  }
  return status;
}

function swatch(className: string): HTMLElement {
  return el('span', `jp-ship-swatch ${className}`);
}
