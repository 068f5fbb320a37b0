/**
 * Names the front end derives from paths: a notebook's stem (the default service
 * name) and the drive-local path of a run's notebook snapshot.
 */
import { IRun } from './tokens';

/** A notebook path's file name without `.ipynb`, as a service name. */
export function notebookStem(path: string): string {
  const file = path.split('/').pop() ?? path;
  return file.replace(/\.ipynb$/i, '');
}

/**
 * The drive-local path of a run's snapshot, `<run id>/<stem> @ <run name>.ipynb`:
 * the run id first (all a reloaded page has to go on), and a file name with no path
 * separators (`/`, `\`, or the drive's `:`).
 */
export function snapshotPath(
  run: Pick<IRun, 'id' | 'name' | 'notebook'>,
  notebook: string | null
): string {
  const stem = notebookStem(run.notebook || notebook || '') || 'notebook';
  const name = `${stem} @ ${run.name || run.id}`.replace(/[/\\:]/g, '-');
  return `${run.id}/${name}.ipynb`;
}

/** The run id of a snapshot's drive-local path. */
export function snapshotRunId(localPath: string): string {
  return localPath.split('/')[0];
}

/**
 * The DOM id of a service's page: one page per service and workspace (two workspaces
 * may both have a `churn`), so the key is the notebook's folder and the service's name;
 * readable where it can be, with a hash of the whole key so ids never collide.
 */
export function servicePageId(name: string, notebook: string | null): string {
  const folder = notebook && notebook.includes('/') ? notebook.slice(0, notebook.lastIndexOf('/')) : '';
  const key = `${folder}\u0000${name}`;
  let hash = 5381;
  for (let i = 0; i < key.length; i++) {
    hash = ((hash * 33) ^ key.charCodeAt(i)) >>> 0;
  }
  const readable = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60);
  return `jp-ship-service-page-${readable}-${hash.toString(16)}`;
}
