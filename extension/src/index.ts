import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { ShipSidebar } from './sidebar';

/**
 * The Ship sidebar, backed by the kernel_magics server extension.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'kernel-magics:plugin',
  description: 'The Ship sidebar: experiments, models, services, drift and cost.',
  autoStart: true,
  optional: [ITranslator, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator | null,
    restorer: ILayoutRestorer | null
  ): void => {
    const sidebar = new ShipSidebar({
      translator: translator ?? nullTranslator
    });
    app.shell.add(sidebar, 'left', { rank: 850 });
    restorer?.add(sidebar, sidebar.id);
    // Fire and forget: activation must not wait on the server.
    void sidebar.refresh();
  }
};

export default plugin;
