/**
 * How the panels report errors and long actions: JupyterLab notifications, and a
 * 404 without Ship's JSON body explained as a missing server extension.
 */
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { ShipAPIError } from './api';

/** A message for an error of a Ship API call. */
export function describeError(trans: TranslationBundle, error: unknown): string {
  if (error instanceof ShipAPIError && error.serverExtensionMissing) {
    return trans.__(
      'The Ship server extension is not running. Install the kernel-magics package into the environment that runs JupyterLab, check that `jupyter server extension list` shows kernel_magics enabled, and restart JupyterLab.'
    );
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Shows each distinct failure once: a panel that polls would otherwise repeat it.
 */
export class ErrorNotifier {
  /** Notify `message` unless it is the one last notified. */
  show(message: string): void {
    if (message !== this._last) {
      this._last = message;
      Notification.error(message, { autoClose: 8000 });
    }
  }

  /** The next failure is new again. */
  clear(): void {
    this._last = '';
  }

  private _last = '';
}

/**
 * Run an action that may take a while: an in-progress notification appears if it
 * is still running after a moment, and turns into its outcome; an error is always
 * notified. Resolves or rejects like `action`.
 */
export async function longAction<T>(
  trans: TranslationBundle,
  action: Promise<T>,
  pending: string,
  done: string
): Promise<T> {
  let id: string | null = null;
  // A quick action shows its result, not a notification that flashes by.
  const timer = window.setTimeout(() => {
    id = Notification.emit(pending, 'in-progress', { autoClose: false });
  }, 400);
  try {
    const result = await action;
    if (id !== null) {
      Notification.update({ id, message: done, type: 'success', autoClose: 3000 });
    }
    return result;
  } catch (error) {
    const message = describeError(trans, error);
    if (id !== null) {
      Notification.update({ id, message, type: 'error', autoClose: false });
    } else {
      Notification.error(message, { autoClose: 8000 });
    }
    throw error;
  } finally {
    window.clearTimeout(timer);
  }
}
