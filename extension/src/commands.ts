import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { ICellModel } from '@jupyterlab/cells';
import { INotebookTracker } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';
import { CommandRegistry } from '@lumino/commands';

import { buildService, listServices } from './api';
import { isTracked, SERVE_TAG, tagList, toggleServeTag, toggleTrack, TRACK_MAGIC } from './cells';
import { serveIcon, shipIcon } from './icons';
import { describeError } from './notify';
import { ServicePage } from './panels/servicepage';
import { notebookStem, servicePageId } from './paths';
import { IBuildResult, IRelease } from './tokens';

/**
 * Command ids. `buildService` and `openService` are registered by the Services plugin
 * (`addBuildServiceCommand`, `addOpenServiceCommand`), the others by the commands plugin.
 */
export namespace CommandIDs {
  export const trackCell = 'kernel-magics:track-cell';
  export const toggleServeCell = 'kernel-magics:toggle-serve-cell';
  export const buildService = 'kernel-magics:build-service';
  export const openService = 'kernel-magics:open-service';
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

/**
 * Register `kernel-magics:open-service` (args `name`, `notebook`): a service's page in
 * the main area (traffic, latency and errors per version over time; its release). A
 * page already open for that service of that workspace is brought to the front.
 * Without a name (the palette) it asks which service of the workspace of the notebook
 * in focus. `onReleaseChanged` hears of a change made on a page.
 */
export function addOpenServiceCommand(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  trans: TranslationBundle,
  palette: ICommandPalette | null,
  onReleaseChanged: (release: IRelease) => void
): void {
  const open = (name: string, notebook: string | null): void => {
    const id = servicePageId(name, notebook);
    for (const widget of app.shell.widgets('main')) {
      if (widget.id === id) {
        app.shell.activateById(id);
        return;
      }
    }
    const page = new ServicePage({ trans, name, notebook, id: `${id}-content` });
    page.releaseChanged.connect((_, release) => onReleaseChanged(release));
    const widget = new MainAreaWidget({ content: page });
    widget.id = id;
    widget.addClass('jp-ship-service-page-widget');
    widget.title.icon = serveIcon;
    widget.title.closable = true;
    app.shell.add(widget, 'main');
    app.shell.activateById(id);
  };
  app.commands.addCommand(CommandIDs.openService, {
    label: args =>
      typeof args.name === 'string'
        ? trans.__('Open Service %1', args.name)
        : trans.__('Open a Service Page…'),
    caption: trans.__('A service as a page: traffic, latency and errors per version over time; its release'),
    execute: async args => {
      // The panel passes its notebook (null: Jupyter's root); the palette none.
      const notebook =
        typeof args.notebook === 'string' || args.notebook === null
          ? args.notebook
          : (tracker.currentWidget?.context.path ?? null);
      let name = typeof args.name === 'string' ? args.name : null;
      if (name === null) {
        try {
          const { services } = await listServices(notebook);
          if (!services.length) {
            Notification.info(trans.__('No services yet: build one from a notebook first.'), { autoClose: 5000 });
            return;
          }
          const answer = await InputDialog.getItem({
            title: trans.__('Open a service page'),
            items: services.map(s => s.name),
            okLabel: trans.__('Open')
          });
          name = answer.button.accept ? answer.value : null;
        } catch (error) {
          Notification.error(describeError(trans, error), { autoClose: 8000 });
          return;
        }
      }
      if (name) {
        open(name, notebook);
      }
    }
  });
  if (palette) {
    palette.addItem({ command: CommandIDs.openService, category: trans.__('Ship') });
  }
}
