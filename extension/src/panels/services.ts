import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';

import { getLoop, getRelease, listServices, ShipAPIError, startService, stopService } from '../api';
import { el, formatMs, formatNumber } from '../format';
import { describeError, longAction } from '../notify';
import { ILoopStatus, IRelease, IService } from '../tokens';
import { ShipPanel } from './base';
import { renderLoop } from './loop';
import { ExpandedSections, ReleaseRequest, renderRelease } from './release';
import { requestChange } from './releaseactions';

/** Re-read the services (health, traffic) this often while the panel is visible. */
const POLL_MS = 10000;

/**
 * The Services panel: the workspace's services and their versions, whether one runs
 * locally and is healthy, and its traffic from the prediction log over the last
 * minutes (request rate, p50/p99 latency, error rate). Start and stop a local service.
 * Under each service, its release (panels/release.ts): the traffic split, the canary's
 * checks, the shadows' reports, the decisions, and the buttons that change it; then its
 * retraining loop (panels/loop.ts): `ship watch`, back-off, the loop's events. A
 * service's name opens its page in the main area (`openRequested`).
 */
export class ServicesPanel extends ShipPanel {
  constructor(trans: TranslationBundle) {
    super({
      trans,
      id: 'jp-ship-services',
      className: 'jp-ship-services',
      label: trans.__('Services'),
      loading: trans.__('Loading services…'),
      refreshTitle: trans.__('Reload the services'),
      bodyClass: 'jp-ship-service-list',
      pollMs: POLL_MS
    });
  }

  /** A service's page was asked for: its name, and the notebook whose workspace holds it. */
  get openRequested(): ISignal<this, { name: string; notebook: string | null }> {
    return this._openRequested;
  }

  protected notebookChanged(): void {
    this._releases.clear();
    this._loops.clear();
  }

  /**
   * Fetch the services and render them (with the releases and loops read last time),
   * then their releases (reading the prediction log takes a moment) and loops, and
   * render again.
   */
  protected async load(notebook: string | null): Promise<void> {
    const list = await listServices(notebook);
    if (this.isStale(notebook)) {
      return;
    }
    this._render(list.services);
    // A release that cannot be read is shown in its service's section, not as the panel's error.
    const [releases, loops] = await Promise.all([
      Promise.all(list.services.map(s => getRelease(s.name, notebook).catch((error: unknown) => error))),
      Promise.all(list.services.map(s => getLoop(s.name, notebook).catch((error: unknown) => error)))
    ]);
    if (!this.isStale(notebook)) {
      this._releases.clear();
      this._loops.clear();
      list.services.forEach((s, i) => {
        this._releases.set(s.name, releases[i]);
        this._loops.set(s.name, loops[i]);
      });
      this._render(list.services);
    }
  }

  private _render(services: IService[]): void {
    this._services = services;
    const trans = this.trans;
    this.setStatus(
      services.length
        ? trans._n('%1 service', '%1 services', services.length)
        : trans.__('No services yet: build one from a notebook (Build a Service from This Notebook).')
    );
    this.body.replaceChildren(
      ...services.map(service => this._renderService(service, this._releases.get(service.name)))
    );
  }

  private _renderService(service: IService, release: unknown): HTMLElement {
    const trans = this.trans;
    const section = el('section', 'jp-ship-service');
    section.dataset.service = service.name;
    const heading = el('h3', 'jp-ship-service-name');
    const title = el('button', 'jp-ship-service-title jp-ship-service-open', service.name);
    title.title = trans.__('Open %1 as a page: traffic, latency and errors per version', service.name);
    title.addEventListener('click', () =>
      this._openRequested.emit({ name: service.name, notebook: this.notebook })
    );
    const running = service.running?.alive ? service.running : null;
    const state = running
      ? running.ready
        ? el('span', 'jp-ship-service-state jp-ship-mod-ready', trans.__('running · ready'))
        : el('span', 'jp-ship-service-state jp-ship-mod-starting', trans.__('running · not ready'))
      : el('span', 'jp-ship-service-state jp-ship-mod-stopped', trans.__('stopped'));
    const action = running
      ? el('button', 'jp-ship-button jp-ship-service-stop', trans.__('Stop'))
      : el('button', 'jp-ship-button jp-ship-service-start', trans.__('Start'));
    action.addEventListener('click', () => void this._toggle(service.name, running !== null));
    heading.append(title, state, action);

    const details = el('dl', 'jp-ship-service-details');
    const add = (label: string, value: string | HTMLElement): void => {
      const dd = el('dd', 'jp-ship-value');
      dd.append(value);
      details.append(el('dt', '', label), dd);
    };
    const versions = service.versions
      .map(v => (v.model ? `v${v.version} (${v.model} v${v.model_version ?? '?'})` : `v${v.version}`))
      .join(', ');
    add(trans.__('Versions'), versions || '—');
    if (running) {
      const link = el('a', 'jp-ship-link', running.url);
      link.title = trans.__('The service’s OpenAPI document: %1/openapi.json', running.url);
      link.href = `${running.url}/openapi.json`;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      add(trans.__('Serving'), trans.__('v%1 on port %2', running.version ?? '?', running.port));
      add(trans.__('URL'), link);
    }
    const traffic = service.traffic;
    const minutes = Math.round(traffic.window_s / 60);
    add(
      trans.__('Requests (%1 min)', minutes),
      trans.__('%1 · %2/s', traffic.requests, formatNumber(Number(traffic.rate_per_s.toFixed(3))))
    );
    add(trans.__('Latency p50 / p99'), `${formatMs(traffic.p50_ms)} / ${formatMs(traffic.p99_ms)}`);
    add(
      trans.__('Error rate'),
      traffic.error_rate === null ? '—' : `${formatNumber(Number((traffic.error_rate * 100).toFixed(2)))} %`
    );
    section.append(heading, details, this._renderRelease(service.name, release));
    const loop = this._renderLoop(service.name, this._loops.get(service.name));
    if (loop) {
      section.append(loop);
    }
    return section;
  }

  /** The retraining loop of a service, or why it cannot be shown (null: not read yet). */
  private _renderLoop(name: string, loop: unknown): HTMLElement | null {
    const trans = this.trans;
    if (loop === undefined) {
      return null;
    }
    if (loop instanceof Error || !loop) {
      const message =
        loop instanceof ShipAPIError && loop.serverExtensionMissing
          ? trans.__('No loop API on this server: update the kernel-magics package and restart JupyterLab.')
          : describeError(trans, loop);
      return el('p', 'jp-ship-status jp-ship-error jp-ship-loop-error', message);
    }
    return renderLoop(loop as ILoopStatus, { trans, expanded: this._expanded, key: name });
  }

  /** The release of a service, or why it cannot be shown (undefined: not read yet). */
  private _renderRelease(name: string, release: unknown): HTMLElement {
    const trans = this.trans;
    if (release === undefined) {
      return el('p', 'jp-ship-status jp-ship-release-loading', trans.__('Reading the release…'));
    }
    if (release instanceof Error || !release) {
      const message =
        release instanceof ShipAPIError && release.serverExtensionMissing
          ? trans.__('No release API on this server: update the kernel-magics package and restart JupyterLab.')
          : describeError(trans, release);
      return el('p', 'jp-ship-status jp-ship-error jp-ship-release-error', message);
    }
    const doc = release as IRelease;
    return renderRelease(doc, {
      trans,
      expanded: this._expanded,
      key: name,
      onRequest: request => void this._change(doc, request)
    });
  }

  private async _change(release: IRelease, request: ReleaseRequest): Promise<void> {
    const changed = await requestChange(this.trans, release, request, this.notebook);
    if (changed) {
      // The answer is the release after the change: show it now, then re-read the rest.
      this._releases.set(release.service, changed);
      this._render(this._services);
      await this.refresh();
    }
  }

  private async _toggle(name: string, running: boolean): Promise<void> {
    const trans = this.trans;
    try {
      if (running) {
        await longAction(
          trans,
          stopService(name, this.notebook),
          trans.__('Stopping service %1…', name),
          trans.__('Stopped service %1; its prediction log is flushed.', name)
        );
      } else {
        await longAction(
          trans,
          startService(name, this.notebook),
          trans.__('Starting service %1…', name),
          trans.__('Service %1 is ready.', name)
        );
      }
    } catch {
      // the notification shows the error
    }
    await this.refresh();
  }

  private readonly _expanded = new ExpandedSections();
  private _services: IService[] = [];
  /** Each service's last release (or the error reading it), by name. */
  private readonly _releases = new Map<string, unknown>();
  /** Each service's last loop status (or the error reading it), by name. */
  private readonly _loops = new Map<string, unknown>();
  private readonly _openRequested = new Signal<this, { name: string; notebook: string | null }>(this);
}
