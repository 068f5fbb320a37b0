/**
 * Seeds the server root before the tests: 1,000 runs of `many/runs.ipynb` with
 * bench/seed_runs.py (the runs Ship's writer would log; about half a minute), the
 * models and services of `models/`, the monitored service of `monitor/`, the
 * released service of `release/`, the retraining loop of `loop/`, and the review queue
 * of `review/`.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const MANY_RUNS = 1000;

export default function globalSetup(): void {
  const root = process.env.SHIP_UI_ROOT!;
  seedModels(root);
  seedMonitor(root);
  seedRelease(root);
  seedLoop(root);
  seedReview(root);
  const folder = path.join(root, 'many');
  fs.mkdirSync(folder, { recursive: true });
  const notebook = {
    cells: [
      {
        cell_type: 'code',
        execution_count: null,
        id: 'seeded',
        metadata: {},
        outputs: [],
        source: '# 1,000 runs of this notebook were seeded by bench/seed_runs.py'
      }
    ],
    metadata: {
      kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' }
    },
    nbformat: 4,
    nbformat_minor: 5
  };
  fs.writeFileSync(path.join(folder, 'runs.ipynb'), JSON.stringify(notebook));
  if (fs.existsSync(path.join(folder, '.ship', 'mlflow.db'))) {
    return;
  }
  const repo = path.resolve(__dirname, '..', '..');
  const python = process.env.SHIP_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
  execFileSync(
    python,
    [
      path.join(repo, 'bench', 'seed_runs.py'),
      folder,
      '--notebook',
      'runs.ipynb',
      '--runs',
      String(MANY_RUNS),
      '--experiment',
      'many'
    ],
    { stdio: 'inherit', env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' } }
  );
}

/**
 * Seeds `models/`: two exported versions of the `churn` model and the `churn` service
 * built from `models/churn.ipynb` (tests/ui/seed_models.py; about 15 seconds).
 */
function seedModels(root: string): void {
  const folder = path.join(root, 'models');
  if (fs.existsSync(path.join(folder, '.ship', 'services', 'churn', '1', 'ship.yaml'))) {
    return;
  }
  fs.mkdirSync(folder, { recursive: true });
  const repo = path.resolve(__dirname, '..', '..');
  const python = process.env.SHIP_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
  execFileSync(python, [path.join(__dirname, 'seed_models.py'), folder], {
    stdio: 'inherit',
    env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' }
  });
}

/**
 * Seeds `monitor/`: tracked runs of `monitor/churn.ipynb` (with their cost), the `churn`
 * service built with a reference profile, a day of normal then shifted traffic in its
 * prediction log with feedback, and a few seconds of real serving for its usage
 * (tests/ui/seed_monitor.py; about 30 seconds).
 */
function seedMonitor(root: string): void {
  const folder = path.join(root, 'monitor');
  if (fs.existsSync(path.join(folder, '.ship', 'services', 'churn', 'log', 'usage'))) {
    return;
  }
  const repo = path.resolve(__dirname, '..', '..');
  const python = process.env.SHIP_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
  execFileSync(python, [path.join(__dirname, 'seed_monitor.py'), folder], {
    stdio: 'inherit',
    env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' }
  });
}

/**
 * Seeds `release/`: the `churn` service in three versions (champion 1, canary 2 at 25 %,
 * shadow 3), the decisions that led there, and 90 minutes of its traffic in the prediction
 * log (tests/ui/seed_release.py; about 25 seconds).
 */
function seedRelease(root: string): void {
  const folder = path.join(root, 'release');
  if (fs.existsSync(path.join(folder, '.ship', 'services', 'churn', 'releases.jsonl'))) {
    return;
  }
  const repo = path.resolve(__dirname, '..', '..');
  const python = process.env.SHIP_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
  execFileSync(python, [path.join(__dirname, 'seed_release.py'), folder], {
    stdio: 'inherit',
    env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' }
  });
}

/**
 * Seeds `loop/`: the `churn` service in two versions, challenger 2 released as a canary by
 * a retraining and promoted, and the loop's events that tell it (tests/ui/seed_loop.py;
 * about 15 seconds).
 */
function seedLoop(root: string): void {
  const folder = path.join(root, 'loop');
  if (fs.existsSync(path.join(folder, '.ship', 'services', 'churn', 'loop.jsonl'))) {
    return;
  }
  const repo = path.resolve(__dirname, '..', '..');
  const python = process.env.SHIP_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
  execFileSync(python, [path.join(__dirname, 'seed_loop.py'), folder], {
    stdio: 'inherit',
    env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' }
  });
}

/**
 * Seeds `review/`: the `digits` service (8 × 8 pixel features) served for real, answering
 * clean and shifted digits, its prediction log scored for review (tests/ui/seed_review.py;
 * about 5 seconds).
 */
function seedReview(root: string): void {
  const folder = path.join(root, 'review');
  if (fs.existsSync(path.join(folder, '.ship', 'services', 'digits', 'log', 'predictions'))) {
    return;
  }
  const repo = path.resolve(__dirname, '..', '..');
  const python = process.env.SHIP_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
  execFileSync(python, [path.join(__dirname, 'seed_review.py'), folder], {
    stdio: 'inherit',
    env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' }
  });
}
