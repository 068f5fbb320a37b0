import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  canaryCandidates,
  canaryChange,
  checkState,
  decisionBy,
  decisionTitle,
  flipsText,
  formatCheck,
  formatMetricValue,
  formatPair,
  formatPValue,
  formatShare,
  formatSteps,
  metricLabel,
  orderVersions,
  parsePercent,
  parseSteps,
  shadowCandidates,
  splitSegments,
  versionRole
} from '../src/release';
import { IRelease, IReleaseCheck, IReleaseDecision } from '../src/tokens';
import { trans } from './trans';

const CHECK: IReleaseCheck = {
  metric: 'error_rate',
  champion: 0,
  canary: 0.31,
  test: "Fisher's exact test (one-sided)",
  p_value: 2e-9,
  n_champion: 570,
  n_canary: 30,
  threshold: 'p < 0.01',
  passed: false
};

function release(overrides: Partial<IRelease> = {}): IRelease {
  return {
    service: 'churn',
    champion: '1',
    canary: { version: '2', percent: 25, steps: [5, 25, 50, 100], started: '2026-12-06T19:30:00+00:00' },
    shadows: ['3'],
    versions: ['4', '3', '2', '1'],
    running: true,
    decisions: [],
    comparison: null,
    shadow_reports: [],
    ...overrides
  };
}

function decision(overrides: Partial<IReleaseDecision>): IReleaseDecision {
  return {
    time: '2026-12-06T19:31:02+00:00',
    action: 'canary',
    version: '2',
    automatic: false,
    percent: null,
    reason: '',
    evidence: [],
    ...overrides
  };
}

describe('splitSegments', () => {
  it('gives the canary its percent and the champion the rest', () => {
    assert.deepEqual(splitSegments(release()), [
      { version: '1', role: 'champion', percent: 75, labelled: true },
      { version: '2', role: 'canary', percent: 25, labelled: true }
    ]);
  });

  it('is the champion alone without a canary', () => {
    assert.deepEqual(splitSegments(release({ canary: null })), [
      { version: '1', role: 'champion', percent: 100, labelled: true }
    ]);
  });

  it('labels only segments wide enough for their label', () => {
    const segments = splitSegments(release({ canary: { ...release().canary!, percent: 5 } }));
    assert.deepEqual(
      segments.map(s => [s.version, s.percent, s.labelled]),
      [
        ['1', 95, true],
        ['2', 5, false]
      ]
    );
  });

  it('leaves out a segment with no share, and clamps what is out of range', () => {
    const full = splitSegments(release({ canary: { ...release().canary!, percent: 100 } }));
    assert.deepEqual(full.map(s => [s.role, s.percent]), [['canary', 100]]);
    const over = splitSegments(release({ canary: { ...release().canary!, percent: 140 } }));
    assert.deepEqual(over.map(s => [s.role, s.percent]), [['canary', 100]]);
    const nan = splitSegments(release({ canary: { ...release().canary!, percent: NaN } }));
    assert.deepEqual(nan.map(s => [s.role, s.percent]), [['champion', 100]]);
  });

  it('widths always add up to 100', () => {
    for (const percent of [0.5, 1, 12.5, 33.3, 50, 99.9]) {
      const segments = splitSegments(release({ canary: { ...release().canary!, percent } }));
      const total = segments.reduce((sum, s) => sum + s.percent, 0);
      assert.ok(Math.abs(total - 100) < 1e-9, `${percent}: ${total}`);
    }
  });
});

describe('formatShare and formatSteps', () => {
  it('writes shares with up to 3 significant digits', () => {
    assert.equal(formatShare(25), '25 %');
    assert.equal(formatShare(2.5), '2.5 %');
    assert.equal(formatShare(33.3333), '33.3 %');
    assert.equal(formatShare(NaN), '—');
  });

  it('marks the current step', () => {
    assert.equal(formatSteps([5, 25, 50, 100], 25), '5 → [25] → 50 → 100 %');
    assert.equal(formatSteps([10, 100]), '10 → 100 %');
    assert.equal(formatSteps([]), '—');
  });
});

describe('version roles', () => {
  it('names each version’s part', () => {
    const r = release();
    assert.equal(versionRole(r, '1'), 'champion');
    assert.equal(versionRole(r, '2'), 'canary');
    assert.equal(versionRole(r, '3'), 'shadow');
    assert.equal(versionRole(r, '4'), null);
  });

  it('orders champion, canary, shadows, then the rest as given', () => {
    assert.deepEqual(orderVersions(['4', '3', '2', '1', '2'], release()), ['1', '2', '3', '4']);
    assert.deepEqual(orderVersions(['b', 'a'], null), ['b', 'a']);
  });

  it('offers the versions a canary or a shadow can be', () => {
    assert.deepEqual(canaryCandidates(release()), ['4', '3']);
    assert.deepEqual(canaryCandidates(release({ canary: null })), ['4', '3', '2']);
    assert.deepEqual(shadowCandidates(release()), ['4']);
    assert.deepEqual(shadowCandidates(release({ canary: null, shadows: [] })), ['4', '3', '2']);
  });
});

describe('formatCheck', () => {
  it('writes a failing error-rate check with its test, p-value, sizes and threshold', () => {
    const text = formatCheck(trans, CHECK);
    assert.equal(text.metric, 'error rate');
    assert.equal(text.champion, '0 %');
    assert.equal(text.canary, '31 %');
    assert.equal(text.state, 'failing');
    assert.equal(text.stateLabel, 'failing');
    assert.equal(text.detail, "Fisher's exact test (one-sided) · p=2.0e-9 · n=570 / 30 · threshold p < 0.01");
    assert.equal(
      text.summary,
      "error rate: champion 0 % (570 requests), canary 31 % (30 requests); Fisher's exact test (one-sided), p=2.0e-9, threshold p < 0.01: failing"
    );
  });

  it('writes latencies in ms, and a check without data as waiting', () => {
    const text = formatCheck(trans, {
      ...CHECK,
      metric: 'latency_p99_ms',
      champion: 3.04,
      canary: null,
      p_value: null,
      passed: null,
      threshold: ''
    });
    assert.equal(text.metric, 'latency p99');
    assert.equal(text.champion, '3.04 ms');
    assert.equal(text.canary, '—');
    assert.equal(text.state, 'waiting');
    assert.equal(text.stateLabel, 'waiting for data');
    assert.equal(text.detail, "Fisher's exact test (one-sided) · p=— · n=570 / 30");
  });

  it('names states and metrics', () => {
    assert.equal(checkState({ passed: true }), 'passed');
    assert.equal(checkState({ passed: false }), 'failing');
    assert.equal(checkState({ passed: null }), 'waiting');
    assert.equal(metricLabel(trans, 'latency_p50_ms'), 'latency p50');
    assert.equal(metricLabel(trans, 'disagreement'), 'disagreement');
    assert.equal(metricLabel(trans, 'new_metric'), 'new metric');
  });

  it('formats values by metric', () => {
    assert.equal(formatMetricValue('accuracy', 0.9234), '92.3 %');
    assert.equal(formatMetricValue('disagreement', 0.05), '5 %');
    assert.equal(formatMetricValue('latency_p50_ms', 1.25), '1.25 ms');
    assert.equal(formatMetricValue('other', 12.3456), '12.35');
    assert.equal(formatMetricValue('error_rate', null), '—');
  });

  it('formats p-values', () => {
    assert.equal(formatPValue(2e-9), '2.0e-9');
    assert.equal(formatPValue(0.0342), '0.034');
    assert.equal(formatPValue(0.5), '0.5');
    assert.equal(formatPValue(1), '1');
    assert.equal(formatPValue(0), '0');
    assert.equal(formatPValue(null), '—');
    assert.equal(formatPValue(NaN), '—');
  });
});

describe('flipsText', () => {
  it('counts the flips and names the most frequent first', () => {
    assert.equal(
      flipsText(trans, [
        { from: 'yes', to: 'no', count: 3 },
        { from: 'no', to: 'yes', count: 7 }
      ]),
      '10 flips: 7 no → yes, 3 yes → no'
    );
  });

  it('says so when nothing flipped', () => {
    assert.equal(flipsText(trans, []), 'no flips');
    assert.equal(flipsText(trans, [{ from: 'a', to: 'b', count: 0 }]), 'no flips');
  });

  it('is singular for one flip, and cuts a long list', () => {
    assert.equal(flipsText(trans, [{ from: 'a', to: 'b', count: 1 }]), '1 flip: 1 a → b');
    const many = ['a', 'b', 'c', 'd', 'e', 'f'].map((to, i) => ({ from: 'x', to, count: 10 - i }));
    assert.equal(flipsText(trans, many, 2), '45 flips: 10 x → a, 9 x → b, +4 more');
  });

  it('breaks ties by class names, so the text is stable', () => {
    assert.equal(
      flipsText(trans, [
        { from: 'b', to: 'a', count: 2 },
        { from: 'a', to: 'b', count: 2 }
      ]),
      '4 flips: 2 a → b, 2 b → a'
    );
  });
});

describe('formatPair', () => {
  it('writes latencies with their difference', () => {
    assert.equal(formatPair({ champion: 1.2, shadow: 1.4 }, 'ms'), '1.2 ms → 1.4 ms (+0.2 ms)');
    assert.equal(formatPair({ champion: 3.9, shadow: 3 }, 'ms'), '3.9 ms → 3 ms (−0.9 ms)');
    assert.equal(formatPair({ champion: 2, shadow: 2 }, 'ms'), '2 ms → 2 ms (±0 ms)');
  });

  it('writes shares with the difference in percentage points', () => {
    assert.equal(formatPair({ champion: 0, shadow: 0.01 }, 'share'), '0 % → 1 % (+1 pp)');
  });

  it('has no difference when a side is missing', () => {
    assert.equal(formatPair({ champion: null, shadow: 0.01 }, 'share'), '— → 1 %');
  });
});

describe('decisions', () => {
  it('titles each action', () => {
    assert.equal(decisionTitle(trans, decision({ action: 'canary', percent: 25 })), 'Canary v2 started at 25 %');
    assert.equal(decisionTitle(trans, decision({ action: 'canary' })), 'Canary v2 started');
    assert.equal(decisionTitle(trans, decision({ action: 'step', percent: 50 })), 'Canary v2 stepped up to 50 %');
    assert.equal(decisionTitle(trans, decision({ action: 'promote' })), 'Promoted v2 to champion');
    assert.equal(decisionTitle(trans, decision({ action: 'rollback' })), 'Rolled back v2');
    assert.equal(decisionTitle(trans, decision({ action: 'shadow', version: '3' })), 'Shadow v3 added');
    assert.equal(decisionTitle(trans, decision({ action: 'unshadow', version: '3' })), 'Shadow v3 removed');
  });

  it('says who decided', () => {
    assert.equal(decisionBy(trans, { automatic: true }), 'automatic');
    assert.equal(decisionBy(trans, { automatic: false }), 'by hand');
  });
});

describe('the Start-canary form', () => {
  it('parses percentages', () => {
    assert.equal(parsePercent('10'), 10);
    assert.equal(parsePercent(' 2.5 % '), 2.5);
    assert.equal(parsePercent('.5'), 0.5);
    assert.equal(parsePercent('100'), 100);
    for (const bad of ['0', '101', '-5', 'ten', '', '1e1', '5,5']) {
      assert.equal(parsePercent(bad), null, bad);
    }
  });

  it('parses steps: sorted, each once, commas or spaces', () => {
    assert.deepEqual(parseSteps('5, 25, 50, 100'), [5, 25, 50, 100]);
    assert.deepEqual(parseSteps('50 10 100 10%'), [10, 50, 100]);
    assert.deepEqual(parseSteps('  '), []);
    assert.equal(parseSteps('5, x'), null);
    assert.equal(parseSteps('5, 150'), null);
  });

  it('makes the change, or says what is wrong', () => {
    assert.deepEqual(canaryChange(trans, '2', '10', '10, 50, 100'), {
      action: 'canary',
      version: '2',
      percent: 10,
      steps: [10, 50, 100]
    });
    assert.deepEqual(canaryChange(trans, '2', '10', ''), { action: 'canary', version: '2', percent: 10 });
    assert.match(canaryChange(trans, '', '10', '') as string, /Choose a version/);
    assert.match(canaryChange(trans, '2', '0', '') as string, /not “0”/);
    assert.match(canaryChange(trans, '2', '10', '5, abc') as string, /Steps must be/);
    assert.match(canaryChange(trans, '2', '60', '5, 25, 50') as string, /last step \(50 %\) is below the traffic share \(60 %\)/);
  });
});

describe('latencies to 3 significant digits', () => {
  it('rounds a check’s and a shadow’s milliseconds', () => {
    assert.equal(formatMetricValue('latency_p50_ms', 0.99641), '0.996 ms');
    assert.equal(formatPair({ champion: 1.02471, shadow: 1.48099 }, 'ms'), '1.02 ms → 1.48 ms (+0.456 ms)');
  });
});
