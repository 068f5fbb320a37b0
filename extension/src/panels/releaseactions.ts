/**
 * Changing a release by hand: each button's confirmation dialog (the Start-canary and
 * Add-shadow dialogs ask their version, share and steps too), then the request, with
 * an in-progress notification that becomes its outcome.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { changeRelease } from '../api';
import { el } from '../format';
import { longAction } from '../notify';
import { canaryChange, canaryCandidates, DEFAULT_STEPS, shadowCandidates } from '../release';
import { IRelease, IReleaseChange } from '../tokens';
import { ReleaseRequest } from './release';

/**
 * Ask for and confirm the change `request` names, then make it. Resolves to the release
 * after the change, or null when the user cancelled or the change failed (the
 * notification says why).
 */
export async function requestChange(
  trans: TranslationBundle,
  release: IRelease,
  request: ReleaseRequest,
  notebook: string | null
): Promise<IRelease | null> {
  const change = await ask(trans, release, request);
  if (change === null) {
    return null;
  }
  const name = release.service;
  try {
    return await longAction(
      trans,
      changeRelease(name, change, notebook),
      trans.__('Changing the release of %1…', name),
      done(trans, name, change)
    );
  } catch {
    return null; // the notification shows the error
  }
}

/** The change the user confirmed, or null. */
async function ask(
  trans: TranslationBundle,
  release: IRelease,
  request: ReleaseRequest
): Promise<IReleaseChange | null> {
  const name = release.service;
  const canary = release.canary;
  switch (request.action) {
    case 'promote':
      if (!canary) {
        return null;
      }
      return (await confirm(
        trans.__('Promote v%1 of %2?', canary.version, name),
        trans.__(
          'v%1 becomes the champion and answers every request; v%2 stops taking traffic. The MLflow alias champion moves to v%1.',
          canary.version,
          release.champion
        ),
        Dialog.okButton({ label: trans.__('Promote') }),
        trans
      ))
        ? { action: 'promote' }
        : null;
    case 'rollback':
      if (!canary) {
        return null;
      }
      return (await confirm(
        trans.__('Roll back v%1 of %2?', canary.version, name),
        trans.__(
          'The canary v%1 stops taking traffic now (it has %2 of the requests); the champion v%3 answers every request.',
          canary.version,
          `${canary.percent} %`,
          release.champion
        ),
        Dialog.warnButton({ label: trans.__('Roll back') }),
        trans
      ))
        ? { action: 'rollback' }
        : null;
    case 'unshadow':
      return (await confirm(
        trans.__('Stop shadowing v%1 of %2?', request.version, name),
        trans.__('v%1 no longer scores copies of the requests; its report so far stays in the log.', request.version),
        Dialog.warnButton({ label: trans.__('Remove shadow') }),
        trans
      ))
        ? { action: 'unshadow', version: request.version }
        : null;
    case 'shadow':
      return askShadow(trans, release);
    case 'canary':
      return askCanary(trans, release);
  }
}

async function confirm(
  title: string,
  body: string,
  accept: Dialog.IButton,
  trans: TranslationBundle
): Promise<boolean> {
  const answer = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), accept]
  });
  return answer.button.accept;
}

/** The Start-canary dialog until its fields are valid or the user cancels. */
async function askCanary(trans: TranslationBundle, release: IRelease): Promise<IReleaseChange | null> {
  const versions = canaryCandidates(release);
  let values: ICanaryValues = {
    version: versions[0] ?? '',
    percent: String(DEFAULT_STEPS[0]),
    steps: DEFAULT_STEPS.join(', ')
  };
  let error = '';
  for (;;) {
    const form = new CanaryForm(trans, release, versions, values, error);
    const answer = await showDialog<ICanaryValues>({
      title: trans.__('Start a canary of %1', release.service),
      body: form,
      focusNodeSelector: 'select',
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Start canary') })
      ]
    });
    if (!answer.button.accept || answer.value === null) {
      return null;
    }
    values = answer.value;
    const change = canaryChange(trans, values.version, values.percent, values.steps);
    if (typeof change !== 'string') {
      return change;
    }
    error = change;
  }
}

/** The Add-shadow dialog. */
async function askShadow(trans: TranslationBundle, release: IRelease): Promise<IReleaseChange | null> {
  const versions = shadowCandidates(release);
  if (!versions.length) {
    return null;
  }
  const answer = await showDialog<string>({
    title: trans.__('Add a shadow to %1', release.service),
    body: new ShadowForm(trans, release, versions),
    focusNodeSelector: 'select',
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Add shadow') })
    ]
  });
  return answer.button.accept && answer.value ? { action: 'shadow', version: answer.value } : null;
}

/** What the Start-canary form holds, as typed. */
interface ICanaryValues {
  version: string;
  percent: string;
  steps: string;
}

/** A labelled field of a form. */
function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  const row = el('label', 'jp-ship-form-field');
  row.append(el('span', 'jp-ship-form-label', label), input);
  if (hint) {
    row.append(el('span', 'jp-ship-form-hint', hint));
  }
  return row;
}

function versionSelect(versions: string[], selected: string): HTMLSelectElement {
  const select = el('select', 'jp-ship-form-input jp-ship-form-version');
  for (const version of versions) {
    const option = el('option', '', `v${version}`);
    option.value = version;
    select.append(option);
  }
  select.value = selected;
  return select;
}

/** Version, traffic share now, and the steps the gate moves the canary up. */
class CanaryForm extends Widget implements Dialog.IBodyWidget<ICanaryValues> {
  constructor(
    trans: TranslationBundle,
    release: IRelease,
    versions: string[],
    values: ICanaryValues,
    error: string
  ) {
    super();
    this.addClass('jp-ship-form');
    this.addClass('jp-ship-canary-form');
    this._version = versionSelect(versions, values.version);
    this._percent = el('input', 'jp-ship-form-input jp-ship-form-percent');
    this._percent.type = 'text';
    this._percent.inputMode = 'decimal';
    this._percent.value = values.percent;
    this._steps = el('input', 'jp-ship-form-input jp-ship-form-steps');
    this._steps.type = 'text';
    this._steps.value = values.steps;
    this.node.append(
      el(
        'p',
        'jp-ship-form-text',
        trans.__(
          'The canary answers a share of the requests; the rest stay with the champion v%1. The gate compares the two on live traffic (error rate, latency, disagreement, accuracy once feedback arrives), moves the canary up the steps while its checks pass, and rolls it back when one fails.',
          release.champion
        )
      ),
      field(trans.__('Version'), this._version),
      field(trans.__('Traffic now (%)'), this._percent),
      field(trans.__('Steps (%)'), this._steps, trans.__('e.g. 5, 25, 50, 100; empty: the configured steps'))
    );
    if (error) {
      this.node.append(el('p', 'jp-ship-form-error', error));
    }
  }

  getValue(): ICanaryValues {
    return { version: this._version.value, percent: this._percent.value, steps: this._steps.value };
  }

  private readonly _version: HTMLSelectElement;
  private readonly _percent: HTMLInputElement;
  private readonly _steps: HTMLInputElement;
}

/** The version to shadow. */
class ShadowForm extends Widget implements Dialog.IBodyWidget<string> {
  constructor(trans: TranslationBundle, release: IRelease, versions: string[]) {
    super();
    this.addClass('jp-ship-form');
    this.addClass('jp-ship-shadow-form');
    this._version = versionSelect(versions, versions[0]);
    this.node.append(
      el(
        'p',
        'jp-ship-form-text',
        trans.__(
          'A shadow scores a copy of every request off the answering path: its answers are logged with the same request id and compared with the champion v%1’s, never sent to clients.',
          release.champion
        )
      ),
      field(trans.__('Version'), this._version)
    );
  }

  getValue(): string {
    return this._version.value;
  }

  private readonly _version: HTMLSelectElement;
}

/** What a notification says once a change is made. */
function done(trans: TranslationBundle, name: string, change: IReleaseChange): string {
  switch (change.action) {
    case 'promote':
      return trans.__('Promoted the canary of %1 to champion.', name);
    case 'rollback':
      return trans.__('Rolled back the canary of %1.', name);
    case 'canary':
      return trans.__('v%1 of %2 is the canary at %3 %.', change.version, name, change.percent);
    case 'shadow':
      return trans.__('v%1 of %2 is a shadow.', change.version, name);
    case 'unshadow':
      return trans.__('v%1 of %2 is no longer a shadow.', change.version, name);
  }
}
