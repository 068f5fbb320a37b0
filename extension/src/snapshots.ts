import { IDocumentManager } from '@jupyterlab/docmanager';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';

import { getRunNotebook } from './api';
import { snapshotPath, snapshotRunId } from './paths';
import { INotebookSnapshot, IRun } from './tokens';

/** The drive name: snapshot paths look like `ShipSnapshot:<run id>/<name>.ipynb`. */
export const SNAPSHOT_DRIVE = 'ShipSnapshot';

/**
 * A read-only contents drive serving the notebook snapshots captured with runs.
 *
 * A snapshot lives in the run's MLflow artifacts (or the spool while pending),
 * not in Jupyter's file tree, and `.ship/` is hidden from Jupyter's contents API;
 * a drive lets JupyterLab open it in the ordinary notebook editor, read-only and
 * without a kernel, with nothing written into the user's project.
 */
export class SnapshotDrive implements Contents.IDrive {
  constructor(trans: TranslationBundle) {
    this._trans = trans;
  }

  readonly name = SNAPSHOT_DRIVE;
  readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings();

  get fileChanged(): ISignal<Contents.IDrive, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  /**
   * The drive-local path of a run's snapshot; remembers which notebook's
   * workspace the run belongs to.
   */
  register(run: IRun, notebook: string | null, snapshot?: INotebookSnapshot): string {
    const local = snapshotPath(run, notebook);
    this._runs.set(local, { id: run.id, notebook, snapshot });
    return local;
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const now = new Date().toISOString();
    if (!localPath.endsWith('.ipynb')) {
      return {
        name: localPath.split('/').pop() ?? '',
        path: localPath,
        type: 'directory',
        writable: false,
        created: now,
        last_modified: now,
        mimetype: '',
        content: [],
        format: 'json'
      };
    }
    // After a page reload only the path is known: the run id is its first part.
    const known = this._runs.get(localPath) ?? {
      id: snapshotRunId(localPath),
      notebook: null,
      snapshot: undefined
    };
    let snapshot: INotebookSnapshot | null = null;
    if (options?.content !== false) {
      snapshot = known.snapshot ?? (await getRunNotebook(known.id, known.notebook));
    }
    return {
      name: localPath.split('/').pop() ?? '',
      path: localPath,
      type: 'notebook',
      writable: false,
      created: now,
      last_modified: now,
      mimetype: 'application/x-ipynb+json',
      content: snapshot ? snapshot.content : null,
      format: 'json'
    };
  }

  getDownloadUrl(): Promise<string> {
    return this._readOnly();
  }

  newUntitled(): Promise<Contents.IModel> {
    return this._readOnly();
  }

  delete(): Promise<void> {
    return this._readOnly();
  }

  rename(): Promise<Contents.IModel> {
    return this._readOnly();
  }

  save(): Promise<Contents.IModel> {
    return this._readOnly();
  }

  copy(): Promise<Contents.IModel> {
    return this._readOnly();
  }

  createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return this._readOnly();
  }

  listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return Promise.resolve([]);
  }

  restoreCheckpoint(): Promise<void> {
    return this._readOnly();
  }

  deleteCheckpoint(): Promise<void> {
    return this._readOnly();
  }

  private _readOnly<T>(): Promise<T> {
    return Promise.reject(
      new Error(
        this._trans.__(
          'Run snapshots are read-only. Use File > Save As… to keep a copy in your project.'
        )
      )
    );
  }

  private readonly _trans: TranslationBundle;
  private readonly _runs = new Map<
    string,
    { id: string; notebook: string | null; snapshot: INotebookSnapshot | undefined }
  >();
  private readonly _fileChanged = new Signal<Contents.IDrive, Contents.IChangedArgs>(this);
  private _isDisposed = false;
}

/**
 * Open a run's notebook snapshot in the notebook editor, read-only and without a kernel.
 */
export async function openSnapshot(
  docManager: IDocumentManager,
  drive: SnapshotDrive,
  run: IRun,
  notebook: string | null
): Promise<void> {
  // Fetch first, so a missing snapshot or a server error reaches the caller's
  // notification instead of an editor that never loads.
  const snapshot = await getRunNotebook(run.id, notebook);
  const path = `${SNAPSHOT_DRIVE}:${drive.register(run, notebook, snapshot)}`;
  docManager.openOrReveal(path, 'Notebook', undefined, undefined, {
    shouldStart: false,
    canStart: false,
    autoStartDefault: false
  });
}
