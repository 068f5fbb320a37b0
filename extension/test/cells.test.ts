import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isTracked, SERVE_TAG, tagList, toggleServeTag, toggleTrack, TRACK_MAGIC } from '../src/cells';

describe('isTracked', () => {
  it('is true when the first line is %%ship track, with or without options', () => {
    for (const source of [
      '%%ship track',
      '%%ship track\nmodel.fit(X, y)',
      '%%ship track --experiment churn\nmodel.fit(X, y)',
      '  %%ship track  \nx = 1',
      '%%ship track\r\nx = 1'
    ]) {
      assert.equal(isTracked(source), true, JSON.stringify(source));
    }
  });

  it('is false for other magics, a later line, or an empty cell', () => {
    for (const source of [
      '',
      '%%ship tracking',
      '%%ship',
      '%ship track',
      'x = 1\n%%ship track',
      '# %%ship track'
    ]) {
      assert.equal(isTracked(source), false, JSON.stringify(source));
    }
  });
});

describe('toggleTrack', () => {
  it('adds the magic as the first line', () => {
    assert.equal(toggleTrack('x = 1'), `${TRACK_MAGIC}\nx = 1`);
    assert.equal(toggleTrack('x = 1\ny = 2\n'), `${TRACK_MAGIC}\nx = 1\ny = 2\n`);
    assert.equal(toggleTrack(''), `${TRACK_MAGIC}\n`);
  });

  it('removes the first line with its options', () => {
    assert.equal(toggleTrack('%%ship track\nx = 1'), 'x = 1');
    assert.equal(toggleTrack('%%ship track --experiment churn\nx = 1\n'), 'x = 1\n');
    assert.equal(toggleTrack('%%ship track'), '');
    assert.equal(toggleTrack('%%ship track\n'), '');
  });

  it('gives back the original source when toggled twice', () => {
    for (const source of ['x = 1', 'x = 1\n', 'a\n\nb', '%%time\nfit()', '']) {
      const twice = toggleTrack(toggleTrack(source));
      assert.equal(twice, source, JSON.stringify(source));
    }
  });
});

describe('toggleServeTag', () => {
  it('adds the tag after the others', () => {
    assert.deepEqual(toggleServeTag([]), [SERVE_TAG]);
    assert.deepEqual(toggleServeTag(['a']), ['a', SERVE_TAG]);
  });

  it('removes every copy of the tag, keeping the others in order', () => {
    assert.deepEqual(toggleServeTag(['a', SERVE_TAG, 'b']), ['a', 'b']);
    assert.deepEqual(toggleServeTag([SERVE_TAG, SERVE_TAG]), []);
  });

  it('leaves its argument alone', () => {
    const tags = Object.freeze(['a']);
    toggleServeTag(tags);
    assert.deepEqual(tags, ['a']);
  });
});

describe('tagList', () => {
  it('keeps the string tags of a list and ignores anything else', () => {
    assert.deepEqual(tagList(['a', 1, null, 'b', { c: 1 }]), ['a', 'b']);
    assert.deepEqual(tagList(undefined), []);
    assert.deepEqual(tagList(null), []);
    assert.deepEqual(tagList('ship:serve'), []);
    assert.deepEqual(tagList({ 0: 'ship:serve' }), []);
  });
});
