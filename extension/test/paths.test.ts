import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { notebookStem, servicePageId, snapshotPath, snapshotRunId } from '../src/paths';

describe('notebookStem', () => {
  it('is the file name without .ipynb', () => {
    assert.equal(notebookStem('train.ipynb'), 'train');
    assert.equal(notebookStem('dir/sub/Churn.IPYNB'), 'Churn');
    assert.equal(notebookStem('a.ipynb.ipynb'), 'a.ipynb');
    assert.equal(notebookStem('notes.txt'), 'notes.txt');
  });

  it('is empty for an empty path or a folder', () => {
    assert.equal(notebookStem(''), '');
    assert.equal(notebookStem('dir/'), '');
  });
});

describe('snapshotPath', () => {
  const run = { id: 'a1b2c3', name: 'run-1', notebook: 'dir/train.ipynb' };

  it('is the run id, then the notebook stem and the run name', () => {
    assert.equal(snapshotPath(run, 'other.ipynb'), 'a1b2c3/train @ run-1.ipynb');
  });

  it('falls back to the followed notebook, then to "notebook"', () => {
    assert.equal(snapshotPath({ ...run, notebook: null }, 'x/churn.ipynb'), 'a1b2c3/churn @ run-1.ipynb');
    assert.equal(snapshotPath({ ...run, notebook: null }, null), 'a1b2c3/notebook @ run-1.ipynb');
    assert.equal(snapshotPath({ ...run, notebook: '' }, ''), 'a1b2c3/notebook @ run-1.ipynb');
  });

  it('names an unnamed run by its id', () => {
    assert.equal(snapshotPath({ ...run, name: '' }, null), 'a1b2c3/train @ a1b2c3.ipynb');
  });

  it('keeps path separators and the drive colon out of the file name', () => {
    const path = snapshotPath({ ...run, name: 'lr=0.1/a\\b:c' }, null);
    assert.equal(path, 'a1b2c3/train @ lr=0.1-a-b-c.ipynb');
    assert.equal(path.split('/').length, 2);
  });

  it('leads back to the run id', () => {
    assert.equal(snapshotRunId(snapshotPath({ ...run, name: 'a/b' }, null)), 'a1b2c3');
    assert.equal(snapshotRunId('a1b2c3'), 'a1b2c3');
  });
});

describe('servicePageId', () => {
  it('is readable and stable', () => {
    const id = servicePageId('churn', 'monitor/churn.ipynb');
    assert.match(id, /^jp-ship-service-page-churn-[0-9a-f]+$/);
    assert.equal(servicePageId('churn', 'monitor/other.ipynb'), id);
  });

  it('tells the same service of two workspaces apart', () => {
    assert.notEqual(servicePageId('churn', 'monitor/a.ipynb'), servicePageId('churn', 'models/a.ipynb'));
    assert.notEqual(servicePageId('churn', null), servicePageId('churn', 'models/a.ipynb'));
  });

  it('keeps odd names out of the id, yet apart', () => {
    const a = servicePageId('a b', null);
    const b = servicePageId('a_b', null);
    assert.match(a, /^jp-ship-service-page-a_b-[0-9a-f]+$/);
    assert.notEqual(a, b);
  });
});
