import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { ICellModel } from '@jupyterlab/cells';
import { INotebookTracker } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';

import { buildService } from './api';
import { isTracked, SERVE_TAG, tagList, toggleServeTag, toggleTrack, TRACK_MAGIC } from './cells';
import { serveIcon, shipIcon } from './icons';
import { describeError } from './notify';
import { notebookStem } from './paths';
import { IBuildResult } from './tokens';

/**
 * Command ids. `buildService` is registered by the Services plugin
 * (`addBuildServiceCommand`), the others by the commands plugin.
 */
export namespace CommandIDs {
  export const trackCell = 'kernel-magics:track-cell';
  export const toggleServeCell = 'kernel-magics:toggle-serve-cell';
  export const buildService = 'kernel-magics:build-service';
}

function cellTags(model: ICellModel): string[] {
  return tagList(model.getMetadata('tags'));
}

/**
 * Register the cell commands in the registry and the palette. The cell toolbar
 * shows them through the settings schema (extension/schema/commands.json).
 */
export function addCellCommands(
  commands: CommandRegistry,
  tracker: INotebookTracker,
  trans: TranslationBundle,
  palette: ICommandPalette | null
): void {
  const activeCode = (): ICellModel | null => {
    const model = tracker.activeCell?.model ?? null;
    return model?.type === 'code' ? model : null;
  };
  const notify = (): void => {
    commands.notifyCommandChanged(CommandIDs.trackCell);
    commands.notifyCommandChanged(CommandIDs.toggleServeCell);
  };
  tracker.activeCellChanged.connect(notify);

  commands.addCommand(CommandIDs.trackCell, {
    label: args =>
      args.toolbar ? '' : trans.__('Track This Cell as an MLflow Run (%1)', TRACK_MAGIC),
    caption: () =>
      activeCode() && isTracked(activeCode()!.sharedModel.getSource())
        ? trans.__('Stop tracking this cell: remove %1', TRACK_MAGIC)
        : trans.__('Track this cell: each run becomes an MLflow run (%1)', TRACK_MAGIC),
    icon: args => (args.toolbar ? shipIcon : undefined),
    isEnabled: () => activeCode() !== null,
    isVisible: () => activeCode() !== null,
    isToggled: () => {
      const model = activeCode();
      return model !== null && isTracked(model.sharedModel.getSource());
    },
    execute: () => {
      const model = activeCode();
      if (model) {
        model.sharedModel.setSource(toggleTrack(model.sharedModel.getSource()));
        notify();
      }
    }
  });

  commands.addCommand(CommandIDs.toggleServeCell, {
    label: args => (args.toolbar ? '' : trans.__('Mark as Serve Cell (ship:serve tag)')),
    caption: () =>
      activeCode() && cellTags(activeCode()!).includes(SERVE_TAG)
        ? trans.__('Unmark serve cell: remove the ship:serve tag')
        : trans.__('Mark as serve cell: its definitions go into the service (ship:serve tag)'),
    icon: args => (args.toolbar ? serveIcon : undefined),
    isEnabled: () => activeCode() !== null,
    isVisible: () => activeCode() !== null,
    isToggled: () => {
      const model = activeCode();
      return model !== null && cellTags(model).includes(SERVE_TAG);
    },
    execute: () => {
      const model = activeCode();
      if (!model) {
        return;
      }
      const tags = toggleServeTag(cellTags(model));
      if (tags.length) {
        model.setMetadata('tags', tags);
      } else {
        model.deleteMetadata('tags');
      }
      notify();
    }
  });

  if (palette) {
    const category = trans.__('Ship');
    palette.addItem({ command: CommandIDs.trackCell, category });
    palette.addItem({ command: CommandIDs.toggleServeCell, category });
  }
}

/**
 * Register `kernel-magics:build-service`: save the notebook in focus, ask for the
 * service name (default: the notebook's stem), build the bundle on the server, and
 * call `onBuilt` with the result. Progress and errors are notifications.
 */
export function addBuildServiceCommand(
  commands: CommandRegistry,
  tracker: INotebookTracker,
  trans: TranslationBundle,
  palette: ICommandPalette | null,
  onBuilt: (result: IBuildResult) => void
): void {
  commands.addCommand(CommandIDs.buildService, {
    label: args => (args.toolbar ? '' : trans.__('Build a Service from This Notebook')),
    caption: trans.__(
      'Build a service bundle from this notebook: its serve cells and the registered model of the same name'
    ),
    icon: args => (args.toolbar ? serveIcon : undefined),
    isEnabled: () => tracker.currentWidget !== null,
    execute: async () => {
      const panel = tracker.currentWidget;
      if (!panel) {
        return;
      }
      await panel.context.save();
      const path = panel.context.path;
      const answer = await InputDialog.getText({
        title: trans.__('Build a service'),
        label: trans.__('Service name (also the registered model it serves)'),
        text: notebookStem(path),
        okLabel: trans.__('Build')
      });
      const name = answer.value?.trim();
      if (!answer.button.accept || !name) {
        return;
      }
      // A build takes seconds (nbconvert, MLflow, a check run): show it from the start.
      const id = Notification.emit(
        trans.__('Building service %1 from %2…', name, path),
        'in-progress',
        { autoClose: false }
      );
      try {
        const result = await buildService(path, name);
        Notification.update({
          id,
          message: trans.__('Built service %1 version %2: %3', result.name, result.version, result.path),
          type: 'success',
          autoClose: 5000
        });
        onBuilt(result);
      } catch (error) {
        Notification.update({
          id,
          message: describeError(trans, error),
          type: 'error',
          autoClose: false
        });
      }
    }
  });
  if (palette) {
    palette.addItem({ command: CommandIDs.buildService, category: trans.__('Ship') });
  }
}
