import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { selectionKey, statusLabel } from '../src/panels/runlist';
import { IRun } from '../src/tokens';
import { trans } from './trans';

function run(fields: Partial<IRun>): IRun {
  return {
    id: 'm-1',
    run_id: 'm-1',
    record_id: null,
    name: 'train',
    experiment: 'churn',
    experiment_id: '1',
    status: 'FINISHED',
    start_time_ms: 0,
    end_time_ms: null,
    written: true,
    notebook: 'train.ipynb',
    params: {},
    metrics: {},
    data: [],
    cost: null,
    error: null,
    pending_reason: null,
    url: null,
    ...fields
  };
}

describe('selectionKey', () => {
  it('keeps a pending run selected once it is written: the record id wins', () => {
    assert.equal(selectionKey(run({ id: 'rec-7', record_id: 'rec-7', run_id: null })), 'rec-7');
    assert.equal(selectionKey(run({ id: 'm-9', record_id: 'rec-7' })), 'rec-7');
    assert.equal(selectionKey(run({ record_id: null })), 'm-1');
  });
});

describe('statusLabel', () => {
  it('names MLflow statuses in lower case', () => {
    assert.equal(statusLabel(trans, run({ status: 'FINISHED' })), 'finished');
    assert.equal(statusLabel(trans, run({ status: 'FAILED' })), 'failed');
    assert.equal(statusLabel(trans, run({ status: 'KILLED' })), 'killed');
    assert.equal(statusLabel(trans, run({ status: 'RUNNING' })), 'running');
    assert.equal(statusLabel(trans, run({ status: 'SCHEDULED' })), 'scheduled');
  });

  it('says when a run still waits in the spool', () => {
    assert.equal(statusLabel(trans, run({ written: false })), 'finished, pending');
  });
});
