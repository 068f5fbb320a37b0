import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  choices,
  classKeys,
  countsText,
  itemKey,
  keyAction,
  pixelShades,
  reasonText,
  ReviewSession,
  topProbabilities
} from '../src/review';
import { IReviewItem, IReviewQueue } from '../src/tokens';
import { trans } from './trans';

function item(id: string, overrides: Partial<IReviewItem> = {}): IReviewItem {
  return {
    request_id: id,
    row: 0,
    rows: 1,
    time: '2026-12-07T10:00:00+00:00',
    version: '1',
    inputs: {},
    prediction: 7,
    probabilities: { '1': 0.2, '7': 0.41, '9': 0.39 },
    scores: { confidence: 0.41, margin: 0.02, entropy: 0.6, ood: 0, ood_feature: null },
    reason: 'confidence',
    label: null,
    ...overrides
  };
}

function queue(ids: string[], labelled = 0): IReviewQueue {
  return {
    name: 'digits',
    items: ids.map(id => item(id)),
    pending: ids.length,
    scored: 100,
    routed: ids.length + labelled,
    labelled,
    today: { routed: ids.length + labelled, predictions: 100, budget: 20 },
    by_reason: {},
    classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    image: null,
    features: null,
    settings: { since: '7d' }
  };
}

const ids = (session: ReviewSession): string[] => session.order.map(key => key.split('/')[0]);

describe('classKeys', () => {
  it('gives digits their own key', () => {
    const keys = classKeys([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(
      keys.map(k => k.key),
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
    );
    assert.equal(keys[3].value, 3);
  });

  it('gives names a free letter of theirs, never s or u', () => {
    const keys = classKeys(['cat', 'cow', 'sheep', 'unicorn', 'dog']);
    assert.deepEqual(
      keys.map(k => k.key),
      ['c', 'o', 'h', 'n', 'd']
    );
  });

  it('hands out keys up to 34 classes, then none', () => {
    const many = Array.from({ length: 40 }, (_, i) => `class ${i + 100}`);
    const keys = classKeys(many).map(k => k.key);
    const given = keys.filter((k): k is string => k !== null);
    assert.equal(new Set(given).size, given.length);
    assert.equal(given.length, 34);
    assert.ok(!given.includes('s') && !given.includes('u'));
    assert.equal(keys[39], null);
  });
});

describe('choices', () => {
  it('offers the model’s classes, else the ones its probabilities name, else none', () => {
    const digits = queue(['a']);
    assert.deepEqual(choices(digits, digits.items[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const unnamed = { ...digits, classes: null };
    assert.deepEqual(choices(unnamed, item('a', { probabilities: { '0': 0.55, '1': 0.45 } })), ['0', '1']);
    assert.equal(choices(unnamed, item('a', { probabilities: null })), null);
    assert.equal(choices(unnamed, null), null);
  });
});

describe('keyAction', () => {
  const keys = classKeys([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  it('maps keys to actions', () => {
    assert.deepEqual(keyAction('3', keys), { kind: 'label', value: 3 });
    assert.deepEqual(keyAction('Enter', keys), { kind: 'confirm' });
    assert.deepEqual(keyAction('s', keys), { kind: 'skip' });
    assert.deepEqual(keyAction('U', keys), { kind: 'undo' });
    assert.equal(keyAction('x', keys), null);
    assert.equal(keyAction('ArrowDown', keys), null);
  });
});

describe('reasonText', () => {
  it('says why in words', () => {
    assert.equal(reasonText(trans, item('a')), 'model unsure (confidence 0.41)');
    assert.equal(reasonText(trans, item('a', { reason: 'margin' })), 'close call between 7 and 9 (margin 0.02)');
    assert.equal(reasonText(trans, item('a', { reason: 'entropy' })), 'model unsure (entropy 0.60)');
    const odd = item('a', {
      reason: 'ood',
      scores: { confidence: 0.9, margin: 0.8, entropy: 0.1, ood: 3.5, ood_feature: 'pixel_0_0' }
    });
    assert.equal(reasonText(trans, odd), 'unusual input: pixel_0_0 far outside training');
    assert.equal(reasonText(trans, item('a', { reason: 'audit' })), 'random audit');
  });
});

describe('topProbabilities and pixelShades', () => {
  it('sorts the most probable first', () => {
    assert.deepEqual(topProbabilities({ a: 0.1, b: 0.7, c: 0.2 }, 2), [
      { label: 'b', p: 0.7 },
      { label: 'c', p: 0.2 }
    ]);
    assert.deepEqual(topProbabilities(null), []);
  });

  it('draws larger values darker', () => {
    const shades = pixelShades({ p0: 0, p1: 8, p2: 16, p3: 'x' }, ['p0', 'p1', 'p2', 'p3']);
    assert.deepEqual(shades, [255, 128, 0, null]);
    assert.deepEqual(pixelShades({ p0: 0, p1: 0 }, ['p0', 'p1']), [255, 255]);
  });
});

describe('ReviewSession', () => {
  it('labels, skips to the end and undoes', () => {
    const session = new ReviewSession();
    session.merge(queue(['a', 'b', 'c', 'd']), 0);
    assert.equal(session.current?.request_id, 'a');
    const first = session.label(3)!;
    assert.deepEqual(first.label, { request_id: 'a', row: 0, value: 3 });
    session.skip(); // b to the end
    assert.deepEqual(ids(session), ['c', 'd', 'b']);
    const second = session.label(5)!;
    assert.ok(second.seq > first.seq);
    assert.equal(session.labelled, 2);
    assert.equal(session.lastLabel?.item.request_id, 'c');
    const undo = session.undo()!;
    assert.deepEqual(undo.label, { request_id: 'c', row: 0, value: null });
    assert.deepEqual(ids(session), ['c', 'd', 'b']);
    assert.equal(session.labelled, 1);
    assert.equal(session.pending, 3);
  });

  it('keeps its writes and skips over a queue read before them, and new items before skipped ones', () => {
    const session = new ReviewSession();
    session.merge(queue(['a', 'b', 'c']), 0);
    const write = session.label(1)!; // a
    session.skip(); // b
    // A read that began before the write was done: a still listed, yet not shown.
    session.merge(queue(['a', 'b', 'c', 'e']), write.seq - 1);
    assert.deepEqual(ids(session), ['c', 'e', 'b']);
    assert.equal(session.labelled, 1);
    // Read after it: the server's word.
    session.merge(queue(['b', 'c', 'e'], 1), write.seq);
    assert.deepEqual(ids(session), ['c', 'e', 'b']);
    assert.equal(session.labelled, 1);
    // An undo the server has not seen yet: the item shows first although the read lacks it.
    const undo = session.undo()!;
    session.merge(queue(['b', 'c', 'e'], 1), write.seq);
    assert.deepEqual(ids(session), ['a', 'c', 'e', 'b']);
    assert.equal(session.labelled, 0);
    session.merge(queue(['a', 'b', 'c', 'e']), undo.seq);
    assert.deepEqual(ids(session), ['a', 'c', 'e', 'b']);
  });

  it('lets the server decide after a failed write, and forgets everything on reset', () => {
    const session = new ReviewSession();
    session.merge(queue(['a', 'b']), 0);
    const write = session.label(2)!;
    session.failed(write.seq);
    session.merge(queue(['a', 'b']), 0);
    assert.deepEqual(ids(session), ['b', 'a']);
    session.reset();
    assert.equal(session.current, null);
    assert.equal(session.lastLabel, null);
    assert.equal(session.undo(), null);
    assert.equal(session.label(1), null);
    assert.equal(itemKey({ request_id: 'r', row: 2 }), 'r/2');
  });

  it('counts in a line', () => {
    assert.equal(
      countsText(trans, queue(['a', 'b'], 3), 2, 3),
      '2 waiting · 3 labelled (last 7d) · today 5 routed of a budget of 20'
    );
  });
});
