import { TranslationBundle } from '@jupyterlab/translation';

import { getWorkspace } from '../api';
import { el } from '../format';
import { IWorkspaceInfo } from '../tokens';
import { ShipPanel } from './base';

/**
 * The workspace of the notebook in focus (else of Jupyter's root): where runs are
 * stored, and the MLflow UI when one is configured.
 */
export class WorkspacePanel extends ShipPanel {
  constructor(trans: TranslationBundle) {
    super({
      trans,
      id: 'jp-ship-workspace',
      className: 'jp-ship-workspace',
      label: trans.__('Workspace'),
      loading: trans.__('Loading workspace…'),
      refreshTitle: trans.__('Re-read the workspace (.ship/ship.toml)'),
      bodyTag: 'dl',
      bodyClass: 'jp-ship-workspace-details'
    });
    this._root = this._addRow(trans.__('Root'));
    this._tracking = this._addRow(trans.__('Tracking URI'));
    this._ui = this._addRow(trans.__('MLflow UI'));
  }

  /** Fetch the workspace of the notebook (else of the root) and show it. */
  protected async load(notebook: string | null): Promise<void> {
    const info = await getWorkspace(notebook);
    if (!this.isStale(notebook)) {
      this._show(info);
    }
  }

  private _show(info: IWorkspaceInfo): void {
    const trans = this.trans;
    this._root.textContent = info.root;
    this._root.title = info.root;
    this._tracking.textContent = info.tracking_uri;
    this._tracking.title = info.tracking_uri;
    this._ui.replaceChildren();
    if (info.ui_url) {
      const link = el('a', 'jp-ship-link', info.ui_url);
      link.href = info.ui_url;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      this._ui.append(link);
    } else {
      this._ui.textContent = trans.__('not configured ([tracking] ui_url in .ship/ship.toml)');
    }
    this.setStatus(trans.__('kernel-magics %1', info.version));
  }

  private _addRow(label: string): HTMLElement {
    const value = el('dd', 'jp-ship-value', '—');
    this.body.append(el('dt', '', label), value);
    return value;
  }

  private readonly _root: HTMLElement;
  private readonly _tracking: HTMLElement;
  private readonly _ui: HTMLElement;
}
