import { Notification } from '@jupyterlab/apputils';
import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { SidePanel } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { getWorkspace, ShipAPIError } from './api';
import { shipIcon } from './icons';
import { IWorkspaceInfo } from './tokens';

/**
 * The "Ship" panel of the left sidebar.
 *
 * Each stage of the loop (Experiments, Models, Services, Drift, Cost) becomes
 * one section of this panel's accordion; until they exist it shows which
 * workspace the server resolved.
 */
export class ShipSidebar extends SidePanel {
  constructor(options: ShipSidebar.IOptions) {
    super({ translator: options.translator });
    this._bundle = options.translator.load('kernel_magics');
    this.id = 'jp-ship-sidebar';
    this.addClass('jp-ship-sidebar');
    this.title.icon = shipIcon;
    this.title.caption = this._bundle.__('Ship');

    const heading = new Widget({ node: document.createElement('h2') });
    heading.addClass('jp-ship-sidebar-heading');
    heading.node.textContent = this._bundle.__('Ship');
    this.header.addWidget(heading);

    this._workspace = new WorkspaceSection(this._bundle);
    this.addWidget(this._workspace);
  }

  /**
   * Fetch the workspace from the server extension and show it.
   *
   * Concurrent calls share one request.
   */
  refresh(): Promise<void> {
    if (this._pending === null) {
      this._pending = this._load().finally(() => {
        this._pending = null;
      });
    }
    return this._pending;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  private async _load(): Promise<void> {
    try {
      this._workspace.showWorkspace(await getWorkspace());
      this._notified = '';
    } catch (error) {
      const message = this._describe(error);
      this._workspace.showError(message);
      // The panel re-fetches each time it is shown: notify once per distinct failure.
      if (message !== this._notified) {
        this._notified = message;
        Notification.error(message, { autoClose: 8000 });
      }
    }
  }

  private _describe(error: unknown): string {
    if (error instanceof ShipAPIError && error.serverExtensionMissing) {
      return this._bundle.__(
        'The Ship server extension is not running. Install the kernel-magics package into the environment that runs JupyterLab, check that `jupyter server extension list` shows kernel_magics enabled, and restart JupyterLab.'
      );
    }
    const detail = error instanceof Error ? error.message : String(error);
    return this._bundle.__('Ship could not read the workspace: %1', detail);
  }

  // SidePanel owns `_trans` (the jupyterlab domain); ours is kernel_magics.
  private readonly _bundle: TranslationBundle;
  private readonly _workspace: WorkspaceSection;
  private _pending: Promise<void> | null = null;
  private _notified = '';
}

/**
 * The namespace for `ShipSidebar` statics.
 */
export namespace ShipSidebar {
  /**
   * Options to create the sidebar.
   */
  export interface IOptions {
    /** The application translator. */
    translator: ITranslator;
  }
}

/**
 * The accordion section naming the workspace, and the empty state until the
 * stage panels exist.
 */
class WorkspaceSection extends Widget {
  constructor(trans: TranslationBundle) {
    super();
    this._trans = trans;
    this.addClass('jp-ship-workspace');
    this.title.label = trans.__('Workspace');

    const intro = document.createElement('p');
    intro.className = 'jp-ship-empty';
    intro.textContent = trans.__(
      'Panels for Experiments, Models, Services, Drift and Cost appear here.'
    );

    const list = document.createElement('dl');
    list.className = 'jp-ship-workspace-details';
    this._root = this._addRow(list, trans.__('Root'));
    this._tracking = this._addRow(list, trans.__('Tracking URI'));

    this._status = document.createElement('p');
    this._status.className = 'jp-ship-status';
    this._status.textContent = trans.__('Loading workspace…');

    this.node.append(intro, list, this._status);
  }

  /** Show the resolved workspace. */
  showWorkspace(info: IWorkspaceInfo): void {
    this._root.textContent = info.root;
    this._root.title = info.root;
    this._tracking.textContent = info.tracking_uri;
    this._tracking.title = info.tracking_uri;
    this._status.textContent = this._trans.__('kernel-magics %1', info.version);
    this._status.classList.remove('jp-ship-error');
  }

  /** Show why the workspace could not be read. */
  showError(message: string): void {
    this._status.textContent = message;
    this._status.classList.add('jp-ship-error');
  }

  private _addRow(list: HTMLDListElement, label: string): HTMLElement {
    const term = document.createElement('dt');
    term.textContent = label;
    const value = document.createElement('dd');
    value.className = 'jp-ship-value';
    value.textContent = '—';
    list.append(term, value);
    return value;
  }

  private readonly _trans: TranslationBundle;
  private readonly _root: HTMLElement;
  private readonly _tracking: HTMLElement;
  private readonly _status: HTMLElement;
}
