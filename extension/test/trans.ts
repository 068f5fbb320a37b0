/**
 * A translation bundle for unit tests: JupyterLab's untranslated behaviour (`%1`, `%2`…
 * filled in by position, `%%` kept as `%`; `_n` picks the plural by `n`, which is `%1`)
 * without loading JupyterLab.
 */
import { TranslationBundle } from '@jupyterlab/translation';

/** Gettext.strfmt of @jupyterlab/translation. */
function fill(message: string, args: unknown[]): string {
  return message
    .replace(/%%/g, '%% ')
    .replace(/%(\d+)/g, (_, n: string) => String(args[Number(n) - 1]))
    .replace(/%% /g, '%');
}

export const trans = {
  __: (message: string, ...args: unknown[]): string => fill(message, args),
  _n: (singular: string, plural: string, n: number, ...args: unknown[]): string =>
    fill(n === 1 ? singular : plural, [n, ...args])
} as unknown as TranslationBundle;
