import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IAliasChange,
  IBuildResult,
  ICostSummary,
  IDriftQuery,
  IDriftReport,
  IErrorBody,
  ILeaderboard,
  ILocalProcess,
  ILoopStatus,
  IModelList,
  IServiceCost,
  IServiceList,
  IExperimentList,
  INotebookSnapshot,
  IRunComparison,
  IRunDetail,
  IRunPage,
  IRunQuery,
  IRelease,
  IReleaseChange,
  IReviewLabel,
  IReviewLabelled,
  IReviewQueue,
  ITimeline,
  IWorkspaceInfo
} from './tokens';

/**
 * An error answer from the Ship REST API.
 */
export class ShipAPIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly serverExtensionMissing: boolean
  ) {
    super(message);
    this.name = 'ShipAPIError';
  }
}

/** Query arguments; null and undefined values are left out. */
type Query = { [key: string]: string | number | null | undefined };

/**
 * Call the Ship server extension at `/ship/api/<endPoint>` and parse its JSON.
 *
 * Widgets never call this directly: each endpoint has one typed function below.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  query: Query = {}
): Promise<T> {
  const { response, url } = await send(endPoint, init, query);
  return parse<T>(response, url);
}

/** A conditional answer: `changed` is false when the server said 304. */
export interface IConditional<T> {
  data: T;
  changed: boolean;
}

// The last answer and its ETag per URL, for conditional requests of polling panels.
const lastAnswers = new Map<string, { etag: string; data: unknown }>();

/**
 * Like `requestAPI`, but sends the ETag of the previous answer to the same URL:
 * a server that has nothing new answers 304 without a body.
 */
async function requestConditional<T>(
  endPoint: string,
  query: Query
): Promise<IConditional<T>> {
  const key = endPoint + URLExt.objectToQueryString(clean(query));
  const previous = lastAnswers.get(key);
  const headers: HeadersInit = previous ? { 'If-None-Match': previous.etag } : {};
  const { response, url } = await send(endPoint, { headers }, query);
  if (response.status === 304 && previous) {
    return { data: previous.data as T, changed: false };
  }
  const data = await parse<T>(response, url);
  const etag = response.headers.get('ETag');
  if (etag) {
    lastAnswers.set(key, { etag, data });
  } else {
    lastAnswers.delete(key);
  }
  return { data, changed: true };
}

/**
 * The workspace the server resolved: from a notebook's folder, or from its root.
 */
export function getWorkspace(notebook: string | null = null): Promise<IWorkspaceInfo> {
  return requestAPI<IWorkspaceInfo>('workspace', {}, { notebook });
}

/**
 * The runs of a notebook, newest first (`changed` is false when nothing changed
 * since the last call with the same query).
 */
export function listRuns(query: IRunQuery): Promise<IConditional<IRunPage>> {
  return requestConditional<IRunPage>('runs', {
    notebook: query.notebook,
    experiment: query.experiment,
    limit: query.limit
  });
}

/** One run in full: MLflow run id or spool record id. */
export function getRun(id: string, notebook: string | null): Promise<IRunDetail> {
  return requestAPI<IRunDetail>(`runs/${encodeURIComponent(id)}`, {}, { notebook });
}

/** The notebook snapshot captured with a run. */
export function getRunNotebook(
  id: string,
  notebook: string | null
): Promise<INotebookSnapshot> {
  return requestAPI<INotebookSnapshot>(
    `runs/${encodeURIComponent(id)}/notebook`,
    {},
    { notebook }
  );
}

/** Two or more runs side by side. */
export function compareRuns(
  ids: string[],
  notebook: string | null
): Promise<IRunComparison> {
  return requestAPI<IRunComparison>('compare', {}, { ids: ids.join(','), notebook });
}

/** The experiments of the notebook's workspace. */
export function listExperiments(notebook: string | null): Promise<IExperimentList> {
  return requestAPI<IExperimentList>('experiments', {}, { notebook });
}

/** The registered models of the workspace. */
export function listModels(notebook: string | null = null): Promise<IModelList> {
  return requestAPI<IModelList>('models', {}, { notebook });
}

/** A registered model's versions side by side. */
export function getLeaderboard(
  name: string,
  notebook: string | null = null
): Promise<ILeaderboard> {
  return requestAPI<ILeaderboard>(`models/${encodeURIComponent(name)}`, {}, { notebook });
}

/** Point an alias (`champion`, `challenger`) at a version of a model. */
export function setAlias(
  name: string,
  alias: string,
  version: string,
  notebook: string | null = null
): Promise<IAliasChange> {
  return requestAPI<IAliasChange>(
    `models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`,
    { method: 'PUT', body: JSON.stringify({ version }) },
    { notebook }
  );
}

/** The workspace's services: versions, local process, traffic. */
export function listServices(notebook: string | null = null): Promise<IServiceList> {
  return requestAPI<IServiceList>('services', {}, { notebook });
}

/** Serve a service's latest version locally; resolves once it is ready. */
export function startService(
  name: string,
  notebook: string | null = null
): Promise<ILocalProcess> {
  return requestAPI<ILocalProcess>(
    `services/${encodeURIComponent(name)}/start`,
    { method: 'POST' },
    { notebook }
  );
}

/** Stop a service's local process gracefully. */
export function stopService(
  name: string,
  notebook: string | null = null
): Promise<ILocalProcess> {
  return requestAPI<ILocalProcess>(
    `services/${encodeURIComponent(name)}/stop`,
    { method: 'POST' },
    { notebook }
  );
}

/** Build a new version of service `name` from a notebook (path relative to the root). */
export function buildService(notebook: string, name: string): Promise<IBuildResult> {
  return requestAPI<IBuildResult>('services', {
    method: 'POST',
    body: JSON.stringify({ notebook, name })
  });
}

/** A service's drift report: the current window and the past ones. */
export function getDrift(name: string, query: IDriftQuery = {}): Promise<IDriftReport> {
  return requestAPI<IDriftReport>(
    `services/${encodeURIComponent(name)}/drift`,
    {},
    { window: query.window, history: query.history, notebook: query.notebook }
  );
}

/** The cost of the notebook's runs and of the workspace's services. */
export function getCostSummary(
  notebook: string | null = null,
  since: string | null = null
): Promise<ICostSummary> {
  return requestAPI<ICostSummary>('cost', {}, { notebook, since });
}

/** One service's cost per 1,000 predictions, per version and over time. */
export function getServiceCost(
  name: string,
  since: string | null = null,
  notebook: string | null = null
): Promise<IServiceCost> {
  return requestAPI<IServiceCost>(
    `services/${encodeURIComponent(name)}/cost`,
    {},
    { since, notebook }
  );
}

/** A service's release: champion, canary, shadows, the canary's checks, the decisions. */
export function getRelease(name: string, notebook: string | null = null): Promise<IRelease> {
  return requestAPI<IRelease>(`services/${encodeURIComponent(name)}/release`, {}, { notebook });
}

/** Change a service's release by hand; answers the release after the change. */
export function changeRelease(
  name: string,
  change: IReleaseChange,
  notebook: string | null = null
): Promise<IRelease> {
  return requestAPI<IRelease>(
    `services/${encodeURIComponent(name)}/release`,
    { method: 'POST', body: JSON.stringify(change) },
    { notebook }
  );
}

/** A service's retraining loop: whether `ship watch` runs, its back-off, the latest `limit` events. */
export function getLoop(name: string, notebook: string | null = null, limit = 50): Promise<ILoopStatus> {
  return requestAPI<ILoopStatus>(`services/${encodeURIComponent(name)}/loop`, {}, { notebook, limit });
}

/** A service's review queue: the routed predictions waiting for a label, and the budget. */
export function getReviewQueue(name: string, notebook: string | null = null): Promise<IReviewQueue> {
  return requestAPI<IReviewQueue>(`services/${encodeURIComponent(name)}/review`, {}, { notebook });
}

/** Write labels (a null value takes one back) as the requests' feedback. */
export function writeReviewLabels(
  name: string,
  labels: IReviewLabel[],
  notebook: string | null = null
): Promise<IReviewLabelled> {
  return requestAPI<IReviewLabelled>(
    `services/${encodeURIComponent(name)}/review/labels`,
    { method: 'POST', body: JSON.stringify(labels) },
    { notebook }
  );
}

/** A service's requests, latency and errors per version over a window (e.g. `1h`). */
export function getTimeline(
  name: string,
  window: string | null = null,
  notebook: string | null = null
): Promise<ITimeline> {
  return requestAPI<ITimeline>(
    `services/${encodeURIComponent(name)}/timeline`,
    {},
    { window, notebook }
  );
}

async function send(
  endPoint: string,
  init: RequestInit,
  query: Query
): Promise<{ response: Response; url: string }> {
  const settings = ServerConnection.makeSettings();
  const url =
    URLExt.join(settings.baseUrl, 'ship', 'api', endPoint) +
    URLExt.objectToQueryString(clean(query));
  try {
    return { response: await ServerConnection.makeRequest(url, init, settings), url };
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
}

async function parse<T>(response: Response, url: string): Promise<T> {
  const text = await response.text();
  let data: unknown = undefined;
  let unreadable = false;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
      unreadable = true;
    }
  }
  if (!response.ok) {
    const body = isErrorBody(data) ? data : null;
    // Every answer of the server extension, 404s included, carries {"error": …};
    // a 404 without it comes from Jupyter itself: the extension is not loaded.
    const missing = response.status === 404 && body === null;
    // `message`, when there is one, is the sentence; `error` may then name only its kind.
    const message =
      body?.message ||
      body?.error ||
      `${response.status} ${response.statusText || 'error'} from ${url}`;
    throw new ShipAPIError(message, response.status, missing);
  }
  if (unreadable) {
    // e.g. a NaN that Python's json wrote: say so rather than render nothing.
    throw new ShipAPIError(`The answer from ${url} is not valid JSON.`, response.status, false);
  }
  return data as T;
}

function clean(query: Query): { [key: string]: string } {
  const out: { [key: string]: string } = {};
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== '') {
      out[key] = String(value);
    }
  }
  return out;
}

function isErrorBody(data: unknown): data is IErrorBody {
  return (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as Record<string, unknown>).error === 'string' &&
    ['string', 'undefined'].includes(typeof (data as Record<string, unknown>).message)
  );
}
