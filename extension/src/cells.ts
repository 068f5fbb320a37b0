/**
 * What makes a notebook cell a tracked run (`%%ship track` on its first line) or a
 * serve cell (the `ship:serve` tag), and toggling either: the text and tag edits the
 * cell commands make.
 */

/** The first line that makes a cell a tracked run. */
export const TRACK_MAGIC = '%%ship track';
/** The cell tag that puts a cell's definitions into the service. */
export const SERVE_TAG = 'ship:serve';

/** Whether a cell's source starts with `%%ship track` (any options after it). */
export function isTracked(source: string): boolean {
  const first = source.split('\n', 1)[0].trim();
  return first === TRACK_MAGIC || first.startsWith(`${TRACK_MAGIC} `);
}

/** The source with `%%ship track` added as its first line, or removed if present. */
export function toggleTrack(source: string): string {
  if (isTracked(source)) {
    const newline = source.indexOf('\n');
    return newline === -1 ? '' : source.slice(newline + 1);
  }
  return source.length ? `${TRACK_MAGIC}\n${source}` : `${TRACK_MAGIC}\n`;
}

/** The tags with `ship:serve` added, or removed if present. */
export function toggleServeTag(tags: readonly string[]): string[] {
  return tags.includes(SERVE_TAG) ? tags.filter(t => t !== SERVE_TAG) : [...tags, SERVE_TAG];
}

/** The string tags of a cell's `tags` metadata; anything else there is ignored. */
export function tagList(tags: unknown): string[] {
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
}
