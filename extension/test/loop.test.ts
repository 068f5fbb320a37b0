import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  eventText,
  formatInterval,
  formatRetrainCheck,
  formatRetrainValue,
  loopSummary,
  newestFirst,
  retrainFacts,
  retrainTitle
} from '../src/loop';
import { ILoopEvent, ILoopStatus, IRetrainCheck } from '../src/tokens';
import { trans } from './trans';

// Local times: the expectations hold in any time zone.
const local = (hour: number, minute: number): string => new Date(2026, 11, 6, hour, minute).toISOString();
const NOW = new Date(2026, 11, 6, 14, 30);

const RECENT: IRetrainCheck = {
  name: 'recent',
  metric: 'accuracy',
  champion: 0.71,
  challenger: 0.84,
  interval: [0.08, 0.18],
  passed: true,
  rows: 240,
  reason: 'better on 240 recent rows: 95% interval of the difference [0.08, 0.18]'
};

function status(overrides: Partial<ILoopStatus> = {}, state: Partial<ILoopStatus['state']> = {}): ILoopStatus {
  return {
    service: 'churn',
    running: false,
    state: {
      pid: 0,
      started: null,
      last_check: null,
      last_retrain: null,
      rejections: 0,
      backoff_until: null,
      canary: null,
      releases_seen: 0,
      ...state
    },
    release: { service: 'churn', champion: '1', canary: null, shadows: [] },
    settings: {},
    events: [],
    ...overrides
  };
}

function event(overrides: Partial<ILoopEvent>): ILoopEvent {
  return { time: local(14, 5), kind: 'watch', message: '', ...overrides };
}

describe('loopSummary', () => {
  it('says a running watcher, its pid, start and last look', () => {
    const summary = loopSummary(
      trans,
      status({ running: true }, { pid: 4242, started: local(9, 0), last_check: local(14, 29) }),
      NOW,
      'en-GB'
    );
    assert.equal(summary.watcher, 'running');
    assert.equal(summary.stateLabel, 'watching');
    assert.equal(summary.watcherText, 'ship watch runs (pid 4242) since 09:00 · last look 14:29');
    assert.equal(summary.backoff, null);
    assert.equal(summary.lastRetrain, null);
  });

  it('says how to start a watcher that does not run', () => {
    const summary = loopSummary(trans, status(), NOW, 'en-GB');
    assert.equal(summary.watcher, 'stopped');
    assert.equal(summary.stateLabel, 'not watched');
    assert.equal(summary.watcherText, 'ship watch is not running: start it in a terminal with “ship watch churn”');
  });

  it('says a back-off until its end, with the rejections', () => {
    const two = loopSummary(
      trans,
      status({ running: true }, { pid: 7, rejections: 2, backoff_until: local(15, 0), last_retrain: local(14, 0) }),
      NOW,
      'en-GB'
    );
    assert.equal(two.stateLabel, 'backing off');
    assert.equal(two.backoff, 'Backing off until 15:00 after 2 rejected challengers');
    assert.equal(two.lastRetrain, 'Last retrained 14:00');
    const one = loopSummary(trans, status({}, { rejections: 1, backoff_until: local(15, 0) }), NOW, 'en-GB');
    assert.equal(one.backoff, 'Backing off until 15:00 after 1 rejected challenger');
  });

  it('forgets a back-off that has ended', () => {
    const over = loopSummary(trans, status({}, { rejections: 1, backoff_until: local(14, 0) }), NOW, 'en-GB');
    assert.equal(over.backoff, null);
    assert.equal(over.stateLabel, 'not watched');
  });
});

describe('newestFirst', () => {
  it('reverses the oldest-first events without touching them', () => {
    const events = [event({ message: 'a' }), event({ message: 'b' })];
    assert.deepEqual(
      newestFirst(events).map(e => e.message),
      ['b', 'a']
    );
    assert.deepEqual(
      events.map(e => e.message),
      ['a', 'b']
    );
  });
});

describe('retrainTitle', () => {
  it('names the decision and the versions', () => {
    const retrained = (decision: string): string =>
      retrainTitle(trans, event({ kind: 'retrain', decision, champion: '1', challenger: '2' }));
    assert.equal(retrained('canary'), 'Challenger v2 released as a canary');
    assert.equal(retrained('passed'), 'Challenger v2 passed the gate (not released)');
    assert.equal(retrained('rejected'), 'Challenger v2 rejected: champion v1 stays');
    assert.equal(retrained('no-holdout'), 'Challenger v2 not released: no holdout to check forgetting');
    assert.equal(retrained('too-little-feedback'), 'Nothing trained: too little labelled production data');
    assert.equal(retrained('first-model'), 'First model: nothing to compare with');
    assert.equal(retrained('failed'), 'Retraining failed');
    assert.equal(retrained('later'), 'Retrained: later');
    assert.equal(
      retrainTitle(trans, event({ kind: 'retrain', decision: 'rejected' })),
      'Challenger the challenger rejected: champion the champion stays'
    );
  });
});

describe('eventText', () => {
  it('gives a retraining with checks no message: the checks say it', () => {
    const text = eventText(
      trans,
      event({ kind: 'retrain', decision: 'canary', challenger: '2', message: `canary: ${RECENT.reason}`, checks: [RECENT] })
    );
    assert.deepEqual(text, {
      kindLabel: 'retrain',
      title: 'Challenger v2 released as a canary',
      tone: 'good',
      message: ''
    });
  });

  it('keeps a failed retraining’s reason, without the decision the title says', () => {
    const text = eventText(
      trans,
      event({ kind: 'retrain', decision: 'failed', message: 'failed: the notebook raised ValueError' })
    );
    assert.equal(text.tone, 'bad');
    assert.equal(text.message, 'the notebook raised ValueError');
  });

  it('reads a release decision as the Services panel’s decisions do', () => {
    const promoted = eventText(
      trans,
      event({ kind: 'release', action: 'promote', version: '2', automatic: true, message: 'promote 2: passed' })
    );
    assert.equal(promoted.title, 'Promoted v2 to champion (automatic)');
    assert.equal(promoted.tone, 'good');
    assert.equal(promoted.message, 'passed');
    const rolled = eventText(trans, event({ kind: 'release', action: 'rollback', version: '3', automatic: false }));
    assert.equal(rolled.title, 'Rolled back v3 (by hand)');
    assert.equal(rolled.tone, 'bad');
    assert.equal(eventText(trans, event({ kind: 'release', message: 'x' })).title, 'Release decision');
  });

  it('titles triggers, back-offs, watchers and errors', () => {
    assert.equal(eventText(trans, event({ kind: 'trigger', reason: 'drift' })).title, 'Triggered by dataset drift');
    assert.equal(eventText(trans, event({ kind: 'trigger', reason: 'accuracy' })).title, 'Triggered by low accuracy');
    const backoff = eventText(trans, event({ kind: 'backoff', until: local(15, 0) }), NOW, 'en-GB');
    assert.deepEqual([backoff.title, backoff.tone, backoff.kindLabel], ['Backing off until 15:00', 'warn', 'back-off']);
    assert.equal(eventText(trans, event({ kind: 'watch', message: 'watching churn: every 60 s' })).title, 'Watcher started');
    assert.equal(eventText(trans, event({ kind: 'watch', message: 'stopped watching churn' })).title, 'Watcher stopped');
    assert.equal(eventText(trans, event({ kind: 'error', message: 'OSError: disk full' })).tone, 'bad');
  });

  it('reads an unknown kind as it is', () => {
    assert.deepEqual(eventText(trans, event({ kind: 'audit', message: 'm' })), {
      kindLabel: 'audit',
      title: 'audit',
      tone: 'plain',
      message: 'm'
    });
  });
});

describe('retrainFacts', () => {
  it('lists versions, rows, the canary and the time taken', () => {
    const facts = retrainFacts(
      trans,
      event({
        kind: 'retrain',
        champion: '1',
        challenger: '2',
        data: { labelled_rows: 800, training_rows: 560, recent_rows: 240 },
        canary: { version: '2', percent: 10, steps: [10, 50, 100] },
        seconds: 41.2
      })
    );
    assert.deepEqual(facts, [
      'champion v1 → challenger v2',
      '800 labelled production rows: 560 trained on, 240 held out for the gate',
      'canary v2 at 10 % (steps [10] → 50 → 100 %)',
      'took 41.2 s'
    ]);
  });

  it('leaves out what a retraining did not get to', () => {
    assert.deepEqual(retrainFacts(trans, event({ kind: 'retrain', data: { labelled_rows: 12 } })), [
      '12 labelled production rows'
    ]);
    assert.deepEqual(retrainFacts(trans, event({ kind: 'retrain', seconds: 0 })), []);
  });
});

describe('retraining checks', () => {
  it('writes accuracy as percentages and its interval in points', () => {
    assert.equal(formatRetrainValue('accuracy', 0.84), '84 %');
    assert.equal(formatInterval('accuracy', [0.08, 0.18]), '[+8, +18] pp');
    assert.equal(formatInterval('accuracy', [-0.008, 0.003]), '[−0.8, +0.3] pp');
    assert.equal(formatInterval('accuracy', [0, 0]), '[±0, ±0] pp');
  });

  it('writes other metrics as numbers', () => {
    assert.equal(formatRetrainValue('rmse', 1.23456), '1.235');
    assert.equal(formatInterval('rmse', [-0.0123, 0.00346]), '[−0.012, +0.0035]');
  });

  it('writes what was not computed as a dash', () => {
    assert.equal(formatRetrainValue('accuracy', null), '—');
    assert.equal(formatRetrainValue('rmse', NaN), '—');
    assert.equal(formatInterval('accuracy', null), '—');
  });

  it('gives a check its cells, verdict and sentence', () => {
    assert.deepEqual(formatRetrainCheck(trans, RECENT), {
      name: 'recent',
      metric: 'accuracy',
      champion: '71 %',
      challenger: '84 %',
      interval: '[+8, +18] pp',
      state: 'passed',
      verdict: 'passed',
      detail: `240 rows · ${RECENT.reason}`,
      summary: 'recent (accuracy, 240 rows): champion 71 %, challenger 84 %, challenger − champion [+8, +18] pp: passed'
    });
    const failed = formatRetrainCheck(trans, { ...RECENT, name: 'holdout', passed: false, rows: 1, reason: '' });
    assert.deepEqual([failed.name, failed.state, failed.verdict, failed.detail], ['holdout', 'failing', 'failed', '1 row']);
    const unjudged = formatRetrainCheck(trans, { ...RECENT, metric: 'rmse', passed: null, interval: null, champion: null });
    assert.deepEqual(
      [unjudged.metric, unjudged.champion, unjudged.interval, unjudged.verdict],
      ['RMSE', '—', '—', 'not judged']
    );
  });
});
