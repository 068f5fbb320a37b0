import { ITranslator, TranslationBundle } from '@jupyterlab/translation';
import { SidePanel } from '@jupyterlab/ui-components';
import { AccordionPanel, Widget } from '@lumino/widgets';

import { shipIcon } from './icons';
import { IShipSidebar } from './tokens';

/**
 * The "Ship" panel of the left sidebar: one accordion section per stage of the loop.
 *
 * Stage panels add themselves with `addPanel(panel, rank)` (the `IShipSidebar`
 * token): Experiments (100) and Workspace (900) here; Models (200), Services (300),
 * Drift (400), Cost (500) and Review (600) from their own plugins.
 *
 * One section is open at a time: the sidebar is narrow and short, and a panel
 * reloads only while shown. The first panel added (Experiments) starts open; opening
 * another closes the rest; closing the open one leaves all closed.
 */
export class ShipSidebar extends SidePanel implements IShipSidebar {
  constructor(options: ShipSidebar.IOptions) {
    super({ translator: options.translator });
    this._bundle = options.translator.load('kernel_magics');
    this.id = 'jp-ship-sidebar';
    this.addClass('jp-ship-sidebar');
    this.title.icon = shipIcon;
    this.title.caption = this._bundle.__('Ship');

    const heading = new Widget({ node: document.createElement('h2') });
    heading.addClass('jp-ship-sidebar-heading');
    heading.node.textContent = this._bundle.__('Ship');
    this.header.addWidget(heading);

    if (this.content instanceof AccordionPanel) {
      this.content.expansionToggled.connect(closeOthers);
    }
  }

  /** Add a stage panel; lower ranks come first. */
  addPanel(panel: Widget, rank: number): void {
    const index = this._slots.findIndex(slot => slot.rank > rank);
    const at = index === -1 ? this._slots.length : index;
    this._slots.splice(at, 0, { panel, rank });
    this.insertWidget(at, panel);
    const accordion = this.content;
    if (
      accordion instanceof AccordionPanel &&
      accordion.widgets.some(widget => widget !== panel && !widget.isHidden)
    ) {
      accordion.collapse(accordion.widgets.indexOf(panel));
    }
    panel.disposed.connect(() => {
      const i = this._slots.findIndex(slot => slot.panel === panel);
      if (i !== -1) {
        this._slots.splice(i, 1);
      }
    });
  }

  // SidePanel owns `_trans` (the jupyterlab domain); ours is kernel_magics.
  private readonly _bundle: TranslationBundle;
  private readonly _slots: { panel: Widget; rank: number }[] = [];
}

/** Accordion: a section that opened closes the others. */
function closeOthers(accordion: AccordionPanel, index: number): void {
  const opened = accordion.widgets[index];
  if (!opened || opened.isHidden) {
    return;
  }
  accordion.widgets.forEach((widget, i) => {
    if (i !== index && !widget.isHidden) {
      accordion.collapse(i);
    }
  });
}

/**
 * The namespace for `ShipSidebar` statics.
 */
export namespace ShipSidebar {
  /**
   * Options to create the sidebar.
   */
  export interface IOptions {
    /** The application translator. */
    translator: ITranslator;
  }
}
