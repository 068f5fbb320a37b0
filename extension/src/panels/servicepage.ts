/**
 * A service as a page in the main area: its request rate, p50 and p99 latency and error
 * rate per version over a window (one line per version, coloured by the version's part
 * in the release), and its release with the buttons that change it. Re-reads every
 * 10 s while it is shown.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';

import { getRelease, getTimeline } from '../api';
import { chart, svg, svgText, withLegend } from '../charts';
import { el, formatMs, formatNumber, formatPercent, formatTime, formatWindow } from '../format';
import { describeError } from '../notify';
import { orderVersions, versionRole } from '../release';
import { linearScale, linePath, round, scaleTop } from '../scales';
import { ITimelineSeries, TimelineMetric, timelineSeries, timelineTotals } from '../timeline';
import { IRelease, ITimeline } from '../tokens';
import { ShipPanel } from './base';
import { ExpandedSections, ReleaseRequest, renderRelease } from './release';
import { requestChange } from './releaseactions';

/** The windows the selector offers. */
const WINDOWS = ['15m', '1h', '6h', '1d', '7d'];
/** Re-read this often while shown. */
const POLL_MS = 10000;
/** The page's charts' coordinate system. */
const WIDTH = 480;
const HEIGHT = 150;
/** Room for the value axis' labels, and the time axis' under the plot. */
const LEFT = 46;
const BOTTOM = 16;
/** Distinct series colours (jp-ship-series-0 …); later versions share the last. */
const COLOURS = 5;
/** Points are marked (with a tooltip each) up to this many buckets. */
const MAX_MARKED = 240;

/** The charts, each a metric of the timeline. */
interface IChartSpec {
  metric: TimelineMetric;
  title: string;
  format: (value: number) => string;
}

/**
 * The page of one service of the workspace of `notebook`.
 */
export class ServicePage extends ShipPanel {
  constructor(options: ServicePage.IOptions) {
    const { trans, name } = options;
    super({
      trans,
      id: options.id,
      className: 'jp-ship-service-page',
      label: trans.__('Service %1', name),
      loading: trans.__('Loading %1…', name),
      refreshTitle: trans.__('Re-read the release and the prediction log'),
      bodyClass: 'jp-ship-service-page-body',
      pollMs: POLL_MS
    });
    this.name = name;
    this.title.caption = trans.__('Service %1: traffic, latency and errors per version; its release', name);
    const heading = el('h2', 'jp-ship-service-page-title', name);
    this._window = el('select', 'jp-ship-select jp-ship-service-page-window');
    this._window.title = trans.__('Window of traffic shown');
    for (const value of WINDOWS) {
      const option = el('option', '', trans.__('last %1', value));
      option.value = value;
      this._window.append(option);
    }
    this._window.value = options.window ?? '1h';
    this._window.addEventListener('change', () => void this.refresh());
    this.actions.prepend(heading, this._window);
    this._charts = el('div', 'jp-ship-service-page-charts');
    this._release = el('div', 'jp-ship-service-page-release');
    this.body.append(this._charts, this._release);
    this.setNotebook(options.notebook);
  }

  /** The service shown. */
  readonly name: string;

  /** The release changed from this page (its new state). */
  get releaseChanged(): ISignal<this, IRelease> {
    return this._releaseChanged;
  }

  protected async load(notebook: string | null): Promise<void> {
    const window = this._window.value;
    const [timeline, release] = await Promise.all([
      getTimeline(this.name, window, notebook),
      // Without a release the charts still show.
      getRelease(this.name, notebook).catch((error: unknown) => error)
    ]);
    if (this.isStale(notebook) || window !== this._window.value) {
      return;
    }
    this._render(timeline, release);
  }

  private _render(timeline: ITimeline, release: unknown): void {
    const trans = this.trans;
    const doc = release instanceof Error || !release ? null : (release as IRelease);
    const requests = timeline.points.reduce((sum, p) => sum + p.requests, 0);
    this.setStatus(
      trans.__(
        '%1 requests in the last %2, per %3 · read %4',
        requests,
        formatWindow(timeline.window_s),
        formatWindow(timeline.bucket_s),
        formatTime(new Date().toISOString())
      )
    );
    const order = orderVersions(timeline.versions, doc);
    const specs: IChartSpec[] = [
      { metric: 'rate_per_s', title: trans.__('Requests per second'), format: v => `${formatNumber(Number(v.toPrecision(3)))}/s` },
      { metric: 'p50_ms', title: trans.__('Latency p50'), format: v => formatMs(Number(v.toPrecision(3))) },
      { metric: 'p99_ms', title: trans.__('Latency p99'), format: v => formatMs(Number(v.toPrecision(3))) },
      { metric: 'error_rate', title: trans.__('Error rate'), format: v => formatPercent(v) }
    ];
    if (!timeline.points.length) {
      this._charts.replaceChildren(
        el(
          'p',
          'jp-ship-empty',
          trans.__('No requests in the last %1: serve the service and send it requests.', formatWindow(timeline.window_s))
        )
      );
    } else {
      this._charts.replaceChildren(
        ...specs.map(spec => this._chart(spec, timelineSeries(timeline, spec.metric, order), timeline, doc))
      );
    }
    if (doc) {
      const heading = el('h3', 'jp-ship-subheading', trans.__('Release'));
      this._release.replaceChildren(
        heading,
        renderRelease(doc, {
          trans,
          expanded: this._expanded,
          key: this.name,
          decisionsShown: 10,
          onRequest: request => void this._change(doc, request)
        })
      );
    } else {
      this._release.replaceChildren(
        el('p', 'jp-ship-status jp-ship-error jp-ship-release-error', describeError(trans, release))
      );
    }
  }

  /** One metric over time, a line per version. */
  private _chart(
    spec: IChartSpec,
    data: ITimelineSeries,
    timeline: ITimeline,
    release: IRelease | null
  ): HTMLElement {
    const trans = this.trans;
    const card = el('section', `jp-ship-service-chart jp-ship-mod-${spec.metric.replace(/_/g, '-')}`);
    card.dataset.metric = spec.metric;
    card.append(el('h3', 'jp-ship-subheading', spec.title));
    const plot = HEIGHT - BOTTOM;
    const values = data.series.flatMap(s => s.values.filter((v): v is number => v !== null));
    const top = scaleTop(values);
    const first = data.times[0];
    const last = data.times[data.times.length - 1];
    const x =
      first === last
        ? () => (LEFT + WIDTH - 4) / 2
        : linearScale(first, last, LEFT, WIDTH - 4);
    const y = linearScale(0, top, plot, 6);
    const box = chart('jp-ship-timeline', HEIGHT, trans.__('%1 per version over time', spec.title), WIDTH);
    const axis = { class: 'jp-ship-chart-axis' };
    box.append(
      svg('line', { x1: LEFT, x2: WIDTH - 4, y1: plot, y2: plot, class: 'jp-ship-chart-baseline' }),
      svg('line', { x1: LEFT, x2: WIDTH - 4, y1: 6, y2: 6, class: 'jp-ship-chart-grid' }),
      svgText({ ...axis, x: LEFT - 4, y: 6, 'text-anchor': 'end', 'dominant-baseline': 'central' }, spec.format(top)),
      svgText({ ...axis, x: LEFT - 4, y: plot, 'text-anchor': 'end', 'dominant-baseline': 'central' }, spec.format(0)),
      svgText({ ...axis, x: LEFT, y: HEIGHT - 3 }, formatTime(new Date(first).toISOString())),
      svgText(
        { ...axis, x: WIDTH - 4, y: HEIGHT - 3, 'text-anchor': 'end' },
        formatTime(new Date(last + data.bucketMs).toISOString())
      )
    );
    const legend: HTMLElement[] = [];
    data.series.forEach((series, i) => {
      const role = release ? versionRole(release, series.version) : null;
      const colour = `jp-ship-series-${Math.min(i, COLOURS - 1)}${role === 'shadow' ? ' jp-ship-mod-shadow' : ''}`;
      const path = linePath(series.values.map((v, j) => (v === null ? null : { x: x(data.times[j]), y: y(v) })));
      const line = svg('path', { d: path, class: `jp-ship-series-line ${colour}` });
      line.dataset.version = series.version;
      box.append(line);
      if (data.times.length <= MAX_MARKED) {
        series.values.forEach((v, j) => {
          if (v === null) {
            return;
          }
          const point = series.points[j];
          const when = formatTime(new Date(data.times[j]).toISOString());
          const detail = point
            ? trans.__('%1 requests, %2 errors', point.requests, point.errors)
            : trans.__('no requests');
          box.append(
            svg(
              'circle',
              { cx: round(x(data.times[j])), cy: round(y(v)), r: 2, class: `jp-ship-series-point ${colour}` },
              `v${series.version} ${when}: ${spec.format(v)} (${detail})`
            )
          );
        });
      }
      const totals = timelineTotals(timeline, series.version);
      const item = el('span', 'jp-ship-legend-item');
      item.dataset.version = series.version;
      item.append(
        el('span', `jp-ship-swatch jp-ship-series-swatch ${colour}`),
        role ? trans.__('v%1 %2', series.version, roleLabel(trans, role)) : `v${series.version}`
      );
      item.title = trans.__(
        'v%1: %2 requests, %3 errors in the window',
        series.version,
        totals.requests,
        totals.errors
      );
      legend.push(item);
    });
    card.append(withLegend(box, ...legend));
    return card;
  }

  private async _change(release: IRelease, request: ReleaseRequest): Promise<void> {
    const changed = await requestChange(this.trans, release, request, this.notebook);
    if (changed) {
      this._releaseChanged.emit(changed);
      await this.refresh();
    }
  }

  private readonly _window: HTMLSelectElement;
  private readonly _charts: HTMLElement;
  private readonly _release: HTMLElement;
  private readonly _expanded = new ExpandedSections();
  private readonly _releaseChanged = new Signal<this, IRelease>(this);
}

function roleLabel(trans: TranslationBundle, role: 'champion' | 'canary' | 'shadow'): string {
  switch (role) {
    case 'champion':
      return trans.__('champion');
    case 'canary':
      return trans.__('canary');
    case 'shadow':
      return trans.__('shadow');
  }
}

/**
 * The namespace for `ServicePage` statics.
 */
export namespace ServicePage {
  /** Options of a page. */
  export interface IOptions {
    trans: TranslationBundle;
    /** The service's name. */
    name: string;
    /** A notebook of the service's workspace (null: Jupyter's root). */
    notebook: string | null;
    /** The DOM id of the page's content. */
    id: string;
    /** The window shown first; default `1h`. */
    window?: string;
  }
}
