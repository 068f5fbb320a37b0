import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { el, formatData, formatMoney, formatNumber, formatSeconds } from '../format';
import { IRunComparison, IValueRow } from '../tokens';


/**
 * Runs side by side, one column per run (the first is the baseline): params,
 * metrics, cost, environment, data and code. Rows that differ are marked; "Only
 * differences" hides the rest. The differences are computed by the server
 * (kernel_magics/tracking/compare.py); this only draws them.
 */
export class CompareView extends Widget {
  constructor(trans: TranslationBundle) {
    super();
    this._trans = trans;
    this.addClass('jp-ship-compare');
    this.title.label = trans.__('Compare runs');
    this.node.tabIndex = -1;
  }

  /** Show a comparison. */
  showComparison(comparison: IRunComparison): void {
    const trans = this._trans;
    this.title.label = trans.__('Compare %1 runs', comparison.runs.length);
    this.title.caption = comparison.runs.map(r => r.name).join(', ');
    const header = el('div', 'jp-ship-compare-header');
    const only = el('input', '');
    only.type = 'checkbox';
    only.checked = true;
    only.addEventListener('change', () =>
      this.node.classList.toggle('jp-ship-mod-all', !only.checked)
    );
    const label = el('label', 'jp-ship-compare-only');
    label.append(only, document.createTextNode(` ${trans.__('Only differences')}`));
    header.append(label);
    for (const note of comparison.notes) {
      header.append(el('p', 'jp-ship-status', note));
    }
    const names = comparison.runs.map(
      (run, i) => `${run.name}${i === 0 ? ` (${trans.__('baseline')})` : ''}`
    );
    const text = (v: string | null): string => v ?? '—';
    const costLabels: { [key: string]: string } = {
      wall_s: trans.__('Wall time'),
      cpu_s: trans.__('CPU time'),
      gpu_s: trans.__('GPU time'),
      peak_memory_mb: trans.__('Peak memory'),
      amount: trans.__('Cost')
    };
    const cost = comparison.cost.map(row => ({ ...row, key: costLabels[row.key] ?? row.key }));
    const money = (v: number | null, key: string): string =>
      key === costLabels.amount
        ? formatMoney(trans, v, null)
        : key === costLabels.peak_memory_mb
          ? v === null
            ? '—'
            : `${formatNumber(v)} MB`
          : formatSeconds(v);
    const env = comparison.environment;
    const packages: IValueRow<string>[] = env.packages.map(p => ({
      key: p.name,
      values: p.versions.map((v, i) => (env.locked[i] ? v ?? trans.__('not installed') : null)),
      differs: true
    }));
    const dataRows: IValueRow<string>[] = comparison.data.map(row => ({
      key: row.name,
      values: row.values.map(v => (v ? formatData(v) : null)),
      differs: row.differs
    }));
    this.node.replaceChildren(
      header,
      this._table(trans.__('Params'), names, comparison.params, text),
      this._table(trans.__('Metrics'), names, comparison.metrics, v => formatNumber(v)),
      this._table(trans.__('Cost'), names, cost, money),
      this._table(
        trans.__('Environment'),
        names,
        [env.python, env.platform, ...packages],
        text,
        trans.__('%1 packages at the same version in every run.', env.same_count)
      ),
      this._table(trans.__('Data'), names, dataRows, text),
      this._code(names, comparison)
    );
  }

  /** Show why there is nothing to compare. */
  showError(message: string): void {
    this.node.replaceChildren(el('p', 'jp-ship-status jp-ship-error', message));
  }

  private _table<T>(
    title: string,
    names: string[],
    rows: IValueRow<T>[],
    format: (value: T | null, key: string) => string,
    footnote?: string
  ): HTMLElement {
    const section = el('section', 'jp-ship-compare-section');
    section.append(el('h3', 'jp-ship-compare-heading', title));
    if (rows.length === 0) {
      section.append(el('p', 'jp-ship-status', this._trans.__('Nothing recorded.')));
      return section;
    }
    const table = el('table', 'jp-ship-compare-table');
    const head = el('tr', '');
    head.append(el('th', ''), ...names.map(name => el('th', '', name)));
    table.append(head);
    for (const row of rows) {
      const tr = el('tr', row.differs ? 'jp-ship-mod-differs' : 'jp-ship-mod-same');
      tr.append(el('th', '', row.key), ...row.values.map(v => el('td', '', format(v, row.key))));
      table.append(tr);
    }
    const same = rows.filter(r => !r.differs).length;
    section.append(table);
    if (same === rows.length) {
      section.append(
        el('p', 'jp-ship-status jp-ship-compare-same', this._trans.__('No differences.'))
      );
    }
    if (footnote) {
      section.append(el('p', 'jp-ship-status', footnote));
    }
    return section;
  }

  private _code(names: string[], comparison: IRunComparison): HTMLElement {
    const trans = this._trans;
    const code = comparison.code;
    const section = el('section', 'jp-ship-compare-section');
    section.append(el('h3', 'jp-ship-compare-heading', trans.__('Code')));
    if (code.identical) {
      section.append(el('p', 'jp-ship-status', trans.__('The same cell in every run.')));
    }
    const columns = el('div', 'jp-ship-compare-code');
    code.sources.forEach((source, i) => {
      const column = el('div', 'jp-ship-compare-code-column');
      column.append(el('div', 'jp-ship-compare-code-name', names[i]));
      const pre = el('pre', 'jp-ship-code');
      if (source === null) {
        pre.textContent = trans.__('(no cell captured)');
      } else {
        const changed = new Set(code.changed_lines[i]);
        source.replace(/\n$/, '').split('\n').forEach((line, n) => {
          const className = changed.has(n + 1)
            ? 'jp-ship-line jp-ship-mod-changed'
            : 'jp-ship-line';
          const span = el('span', className, line || ' ');
          pre.append(span);
        });
      }
      column.append(pre);
      columns.append(column);
    });
    section.append(columns);
    return section;
  }

  private readonly _trans: TranslationBundle;
}
