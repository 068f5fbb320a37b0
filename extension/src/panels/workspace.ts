import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { getWorkspace } from '../api';
import { describeError, ErrorNotifier } from '../notify';
import { IWorkspaceInfo } from '../tokens';

/**
 * The workspace of the notebook in focus (else of Jupyter's root): where runs are
 * stored, and the MLflow UI when one is configured.
 */
export class WorkspacePanel extends Widget {
  constructor(trans: TranslationBundle) {
    super();
    this._trans = trans;
    this.id = 'jp-ship-workspace';
    this.addClass('jp-ship-workspace');
    this.title.label = trans.__('Workspace');

    const list = document.createElement('dl');
    list.className = 'jp-ship-workspace-details';
    this._root = this._addRow(list, trans.__('Root'));
    this._tracking = this._addRow(list, trans.__('Tracking URI'));
    this._ui = this._addRow(list, trans.__('MLflow UI'));

    this._status = document.createElement('p');
    this._status.className = 'jp-ship-status';
    this._status.textContent = trans.__('Loading workspace…');

    this.node.append(list, this._status);
  }

  /** Show the workspace of this notebook (path relative to the server root), or the root's. */
  async refresh(notebook: string | null = null): Promise<void> {
    try {
      this._show(await getWorkspace(notebook));
      this._errors.clear();
    } catch (error) {
      const message = describeError(this._trans, error);
      this._status.textContent = message;
      this._status.classList.add('jp-ship-error');
      this._errors.show(message);
    }
  }

  private _show(info: IWorkspaceInfo): void {
    this._root.textContent = info.root;
    this._root.title = info.root;
    this._tracking.textContent = info.tracking_uri;
    this._tracking.title = info.tracking_uri;
    this._ui.replaceChildren();
    if (info.ui_url) {
      const link = document.createElement('a');
      link.className = 'jp-ship-link';
      link.href = info.ui_url;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      link.textContent = info.ui_url;
      this._ui.append(link);
    } else {
      this._ui.textContent = this._trans.__(
        'not configured ([tracking] ui_url in .ship/ship.toml)'
      );
    }
    this._status.textContent = this._trans.__('kernel-magics %1', info.version);
    this._status.classList.remove('jp-ship-error');
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
  private readonly _ui: HTMLElement;
  private readonly _status: HTMLElement;
  private readonly _errors = new ErrorNotifier();
}
