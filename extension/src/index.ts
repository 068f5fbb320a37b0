import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { compareRuns } from './api';
import { addBuildServiceCommand, addCellCommands } from './commands';
import { shipIcon } from './icons';
import { describeError, longAction } from './notify';
import { CompareView } from './panels/compare';
import { CostPanel } from './panels/cost';
import { DriftPanel } from './panels/drift';
import { ExperimentsPanel } from './panels/experiments';
import { ModelsPanel } from './panels/models';
import { ServicesPanel } from './panels/services';
import { WorkspacePanel } from './panels/workspace';
import { ShipSidebar } from './sidebar';
import { openSnapshot, SnapshotDrive } from './snapshots';
import { IShipSidebar } from './tokens';

/**
 * The Ship sidebar with its Experiments and Workspace panels, backed by the
 * kernel_magics server extension. Later stages add their panels through
 * `IShipSidebar`.
 */
const sidebarPlugin: JupyterFrontEndPlugin<IShipSidebar> = {
  id: 'kernel-magics:plugin',
  description: 'The Ship sidebar: experiments now; models, services, drift and cost as they land.',
  autoStart: true,
  requires: [INotebookTracker, IDocumentManager],
  optional: [ITranslator, ILayoutRestorer],
  provides: IShipSidebar,
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    docManager: IDocumentManager,
    translator: ITranslator | null,
    restorer: ILayoutRestorer | null
  ): IShipSidebar => {
    const trans = (translator ?? nullTranslator).load('kernel_magics');
    const sidebar = new ShipSidebar({ translator: translator ?? nullTranslator });
    app.shell.add(sidebar, 'left', { rank: 850 });
    restorer?.add(sidebar, sidebar.id);

    const drive = new SnapshotDrive(trans);
    app.serviceManager.contents.addDrive(drive);

    const experiments = new ExperimentsPanel({
      trans,
      openCompare: (ids, notebook) => {
        const view = new CompareView(trans);
        const widget = new MainAreaWidget({ content: view });
        widget.id = `jp-ship-compare-${ids.join('-')}`.slice(0, 200);
        widget.title.icon = shipIcon;
        widget.title.closable = true;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        const loading = longAction(
          trans,
          compareRuns(ids, notebook),
          trans.__('Comparing %1 runs…', ids.length),
          trans.__('Compared %1 runs.', ids.length)
        );
        loading.then(
          comparison => view.showComparison(comparison),
          error => view.showError(describeError(trans, error))
        );
      },
      openSnapshot: (run, notebook) => {
        void longAction(
          trans,
          openSnapshot(docManager, drive, run, notebook),
          trans.__('Opening the notebook snapshot of %1…', run.name),
          trans.__('Opened the notebook snapshot of %1 (read-only).', run.name)
        ).catch(() => undefined); // the notification shows the error
      }
    });
    const workspace = new WorkspacePanel(trans);
    sidebar.addPanel(experiments, 100);
    sidebar.addPanel(workspace, 900);

    const follow = (panel: NotebookPanel | null): void => {
      const path = panel?.context.path ?? null;
      // Notebooks outside Jupyter's file tree (run snapshots, other drives) have no runs.
      if (path !== null && app.serviceManager.contents.driveName(path) !== '') {
        return;
      }
      experiments.setNotebook(path);
      void workspace.refresh(path);
    };
    tracker.currentChanged.connect((_, panel) => follow(panel));
    tracker.widgetAdded.connect((_, panel) => {
      panel.context.pathChanged.connect(() => {
        if (tracker.currentWidget === panel) {
          follow(panel);
        }
      });
    });
    NotebookActions.executed.connect((_, { notebook }) => {
      if (notebook === tracker.currentWidget?.content) {
        experiments.cellExecuted();
      }
    });
    // Activation never waits on the server: the panels load in the background.
    app.restored.then(() => follow(tracker.currentWidget)).catch(() => undefined);
    return sidebar;
  }
};

/**
 * Cell commands (palette and cell toolbar): track a cell, mark a serve cell.
 */
const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-magics:commands',
  description: 'Track a cell with %%ship track; toggle the ship:serve cell tag.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ITranslator, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    translator: ITranslator | null,
    palette: ICommandPalette | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('kernel_magics');
    addCellCommands(app.commands, tracker, trans, palette);
  }
};

/** The notebook in focus, when it lives in Jupyter's file tree (not a snapshot drive). */
function focusedNotebook(app: JupyterFrontEnd, panel: NotebookPanel | null): string | null | undefined {
  const path = panel?.context.path ?? null;
  return path !== null && app.serviceManager.contents.driveName(path) !== '' ? undefined : path;
}

/**
 * The Models panel: registered models, versions, aliases and the leaderboard.
 */
const modelsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-magics:models',
  description: 'The Models panel of the Ship sidebar: leaderboard and champion alias.',
  autoStart: true,
  requires: [IShipSidebar, INotebookTracker],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IShipSidebar,
    tracker: INotebookTracker,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('kernel_magics');
    const panel = new ModelsPanel(trans);
    sidebar.addPanel(panel, 200);
    tracker.currentChanged.connect((_, current) => {
      const path = focusedNotebook(app, current);
      if (path !== undefined) {
        panel.setNotebook(path);
      }
    });
  }
};

/**
 * The Services panel (start, stop, health, traffic) and the build-service command.
 */
const servicesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-magics:services',
  description: 'The Services panel of the Ship sidebar, and building a service from a notebook.',
  autoStart: true,
  requires: [IShipSidebar, INotebookTracker],
  optional: [ITranslator, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IShipSidebar,
    tracker: INotebookTracker,
    translator: ITranslator | null,
    palette: ICommandPalette | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('kernel_magics');
    const panel = new ServicesPanel(trans);
    sidebar.addPanel(panel, 300);
    tracker.currentChanged.connect((_, current) => {
      const path = focusedNotebook(app, current);
      if (path !== undefined) {
        panel.setNotebook(path);
      }
    });
    addBuildServiceCommand(app.commands, tracker, trans, palette, () => void panel.refresh());
  }
};

/** Keep a panel on the workspace of the notebook in focus (and of the one open at start). */
function followNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  panel: { setNotebook(path: string | null): void }
): void {
  const follow = (current: NotebookPanel | null): void => {
    const path = focusedNotebook(app, current);
    if (path !== undefined) {
      panel.setNotebook(path);
    }
  };
  tracker.currentChanged.connect((_, current) => follow(current));
  tracker.widgetAdded.connect((_, added) => {
    added.context.pathChanged.connect(() => {
      if (tracker.currentWidget === added) {
        follow(added);
      }
    });
  });
  app.restored.then(() => follow(tracker.currentWidget)).catch(() => undefined);
}

/**
 * The Drift panel: per-feature drift of a service's traffic against its reference.
 */
const driftPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-magics:drift',
  description: 'The Drift panel of the Ship sidebar: per-feature drift over time, histograms.',
  autoStart: true,
  requires: [IShipSidebar, INotebookTracker],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IShipSidebar,
    tracker: INotebookTracker,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('kernel_magics');
    const panel = new DriftPanel(trans);
    sidebar.addPanel(panel, 400);
    followNotebook(app, tracker, panel);
  }
};

/**
 * The Cost panel: per run of the notebook in focus, per service, totals.
 */
const costPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-magics:cost',
  description: 'The Cost panel of the Ship sidebar: runs of the notebook, services, totals.',
  autoStart: true,
  requires: [IShipSidebar, INotebookTracker],
  optional: [ITranslator],
  activate: (
    app: JupyterFrontEnd,
    sidebar: IShipSidebar,
    tracker: INotebookTracker,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('kernel_magics');
    const panel = new CostPanel(trans);
    sidebar.addPanel(panel, 500);
    followNotebook(app, tracker, panel);
    // A tracked cell that finished has its cost in the spool: show it soon after.
    let timer = 0;
    NotebookActions.executed.connect((_, { notebook }) => {
      if (notebook === tracker.currentWidget?.content && panel.isVisible) {
        window.clearTimeout(timer);
        timer = window.setTimeout(() => void panel.refresh(), 1500);
      }
    });
  }
};

export default [
  sidebarPlugin,
  commandsPlugin,
  modelsPlugin,
  servicesPlugin,
  driftPlugin,
  costPlugin
];
