import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { listServices, startService, stopService } from '../api';
import { el, formatNumber } from '../format';
import { describeError, ErrorNotifier, longAction } from '../notify';
import { IService } from '../tokens';
import { formatMs } from './models';

/** Re-read the services (health, traffic) this often while the panel is visible. */
const POLL_MS = 10000;

/**
 * The Services panel: the workspace's services and their versions, whether one runs
 * locally and is healthy, and its traffic from the prediction log over the last
 * minutes (request rate, p50/p99 latency, error rate). Start and stop a local service.
 */
export class ServicesPanel extends Widget {
  constructor(trans: TranslationBundle) {
    super();
    this._trans = trans;
    this.id = 'jp-ship-services';
    this.addClass('jp-ship-services');
    this.title.label = trans.__('Services');

    const bar = el('div', 'jp-ship-toolbar');
    const refresh = el('button', 'jp-ship-button', trans.__('Refresh'));
    refresh.title = trans.__('Reload the services');
    refresh.addEventListener('click', () => void this.refresh());
    bar.append(refresh);
    this._status = el('p', 'jp-ship-status', trans.__('Loading services…'));
    this._list = el('div', 'jp-ship-service-list');
    this.node.append(bar, this._status, this._list);
  }

  /** Read the services of this notebook's workspace (else of Jupyter's root). */
  setNotebook(path: string | null): void {
    if (path !== this._notebook) {
      this._notebook = path;
      if (this.isVisible) {
        void this.refresh();
      }
    }
  }

  /** Fetch the services and render them; polls while visible. */
  async refresh(): Promise<void> {
    window.clearTimeout(this._timer);
    const notebook = this._notebook;
    try {
      const list = await listServices(notebook);
      if (notebook === this._notebook) {
        this._render(list.services);
        this._errors.clear();
      }
    } catch (error) {
      const message = describeError(this._trans, error);
      this._status.textContent = message;
      this._status.classList.add('jp-ship-error');
      this._errors.show(message);
    }
    if (this.isVisible && !this.isDisposed) {
      this._timer = window.setTimeout(() => void this.refresh(), POLL_MS);
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    window.clearTimeout(this._timer);
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private _render(services: IService[]): void {
    const trans = this._trans;
    this._status.classList.remove('jp-ship-error');
    this._status.textContent = services.length
      ? trans._n('%1 service', '%1 services', services.length)
      : trans.__('No services yet: build one from a notebook (Build a Service from This Notebook).');
    this._list.replaceChildren(...services.map(service => this._renderService(service)));
  }

  private _renderService(service: IService): HTMLElement {
    const trans = this._trans;
    const section = el('section', 'jp-ship-service');
    section.dataset.service = service.name;
    const heading = el('h3', 'jp-ship-service-name', service.name);
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
    heading.append(' ', state, ' ', action);

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
    section.append(heading, details);
    return section;
  }

  private async _toggle(name: string, running: boolean): Promise<void> {
    const trans = this._trans;
    try {
      if (running) {
        await longAction(
          trans,
          stopService(name, this._notebook),
          trans.__('Stopping service %1…', name),
          trans.__('Stopped service %1; its prediction log is flushed.', name)
        );
      } else {
        await longAction(
          trans,
          startService(name, this._notebook),
          trans.__('Starting service %1…', name),
          trans.__('Service %1 is ready.', name)
        );
      }
    } catch {
      // the notification shows the error
    }
    await this.refresh();
  }

  private readonly _trans: TranslationBundle;
  private readonly _status: HTMLElement;
  private readonly _list: HTMLElement;
  private readonly _errors = new ErrorNotifier();
  private _notebook: string | null = null;
  private _timer = 0;
}
