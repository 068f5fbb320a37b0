import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IErrorBody, IWorkspaceInfo } from './tokens';

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

/**
 * Call the Ship server extension at `/ship/api/<endPoint>` and parse its JSON.
 *
 * Widgets never call this directly: each endpoint has one typed function below.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'ship', 'api', endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: unknown = undefined;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }

  if (!response.ok) {
    const body = isErrorBody(data) ? data : null;
    // Every answer of the server extension, 404s included, carries {"error": …};
    // a 404 without it comes from Jupyter itself: the extension is not loaded.
    const missing = response.status === 404 && body === null;
    const message =
      body?.error ??
      `${response.status} ${response.statusText || 'error'} from ${url}`;
    throw new ShipAPIError(message, response.status, missing);
  }
  return data as T;
}

/**
 * The workspace the server resolved from its root directory.
 */
export function getWorkspace(): Promise<IWorkspaceInfo> {
  return requestAPI<IWorkspaceInfo>('workspace');
}

function isErrorBody(data: unknown): data is IErrorBody {
  return (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as Record<string, unknown>).error === 'string'
  );
}
