import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { compareRuns } from './api';
import { addBuildServiceCommand, addCellCommands, addOpenServiceCommand, CommandIDs } from './commands';
import { shipIcon } from './icons';
import { describeError, longAction } from './notify';
import { CompareView } from './panels/compare';
import { ShipPanel } from './panels/base';
import { CostPanel } from './panels/cost';
import { DriftPanel } from './panels/drift';
import { ExperimentsPanel } from './panels/experiments';
import { ModelsPanel } from './panels/models';
import { ReviewPanel } from './panels/review';
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

    followNotebook(app, tracker, experiments);
    followNotebook(app, tracker, workspace);
    NotebookActions.executed.connect((_, { notebook }) => {
      if (notebook === tracker.currentWidget?.content) {
        experiments.cellExecuted();
      }
    });
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

/**
 * The notebook in focus (null: none), or undefined when it lives outside Jupyter's
 * file tree (run snapshots, other drives): such a notebook has no workspace to show.
 */
function focusedNotebook(app: JupyterFrontEnd, panel: NotebookPanel | null): string | null | undefined {
  const path = panel?.context.path ?? null;
  return path !== null && app.serviceManager.contents.driveName(path) !== '' ? undefined : path;
}

/**
 * Keep a panel on the workspace of the notebook in focus (and of the one open at
 * start). Activation never waits on the server: the panel loads in the background.
 */
function followNotebook(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  panel: ShipPanel
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

/** A sidebar panel that follows the notebook in focus, added by its own plugin. */
function followingPanelPlugin<T extends ShipPanel>(options: {
  id: string;
  description: string;
  /** Its place in the sidebar's accordion. */
  rank: number;
  create(trans: TranslationBundle): T;
  /** More wiring, once the panel is in the sidebar. */
  connect?(panel: T, context: IPanelContext): void;
}): JupyterFrontEndPlugin<void> {
  return {
    id: options.id,
    description: options.description,
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
      const panel = options.create(trans);
      sidebar.addPanel(panel, options.rank);
      followNotebook(app, tracker, panel);
      options.connect?.(panel, { app, tracker, trans, palette });
    }
  };
}

/** What a panel's plugin has at hand to wire more. */
interface IPanelContext {
  app: JupyterFrontEnd;
  tracker: INotebookTracker;
  trans: TranslationBundle;
  palette: ICommandPalette | null;
}

/**
 * The Models panel: registered models, versions, aliases and the leaderboard.
 */
const modelsPlugin = followingPanelPlugin({
  id: 'kernel-magics:models',
  description: 'The Models panel of the Ship sidebar: leaderboard and champion alias.',
  rank: 200,
  create: trans => new ModelsPanel(trans)
});

/**
 * The Services panel (start, stop, health, traffic, releases), the build-service command,
 * and the service pages (open-service).
 */
const servicesPlugin = followingPanelPlugin({
  id: 'kernel-magics:services',
  description: 'The Services panel of the Ship sidebar, and building a service from a notebook.',
  rank: 300,
  create: trans => new ServicesPanel(trans),
  connect: (panel, { app, tracker, trans, palette }) => {
    addBuildServiceCommand(app.commands, tracker, trans, palette, () => void panel.refresh());
    addOpenServiceCommand(app, tracker, trans, palette, () => void panel.refresh());
    panel.openRequested.connect((_, { name, notebook }) => {
      void app.commands.execute(CommandIDs.openService, { name, notebook });
    });
  }
});

/**
 * The Drift panel: per-feature drift of a service's traffic against its reference.
 */
const driftPlugin = followingPanelPlugin({
  id: 'kernel-magics:drift',
  description: 'The Drift panel of the Ship sidebar: per-feature drift over time, histograms.',
  rank: 400,
  create: trans => new DriftPanel(trans)
});

/**
 * The Cost panel: per run of the notebook in focus, per service, totals.
 */
const costPlugin = followingPanelPlugin({
  id: 'kernel-magics:cost',
  description: 'The Cost panel of the Ship sidebar: runs of the notebook, services, totals.',
  rank: 500,
  create: trans => new CostPanel(trans),
  connect: (panel, { tracker }) => {
    // A tracked cell that finished has its cost in the spool: show it soon after.
    let timer = 0;
    NotebookActions.executed.connect((_, { notebook }) => {
      if (notebook === tracker.currentWidget?.content && panel.isVisible) {
        window.clearTimeout(timer);
        timer = window.setTimeout(() => void panel.refresh(), 1500);
      }
    });
  }
});

/**
 * The Review panel: a service's human-review queue, labelled one item at a time.
 */
const reviewPlugin = followingPanelPlugin({
  id: 'kernel-magics:review',
  description: 'The Review panel of the Ship sidebar: label the predictions routed to a person.',
  rank: 600,
  create: trans => new ReviewPanel(trans)
});

export default [
  sidebarPlugin,
  commandsPlugin,
  modelsPlugin,
  servicesPlugin,
  driftPlugin,
  costPlugin,
  reviewPlugin
];
