/**
 * Shapes of the data the Ship REST API (`/ship/api/…`) answers, and the token
 * stage plugins use to add their panel to the Ship sidebar.
 *
 * Field names match the JSON on the wire (kernel_magics/tracking/catalog.py and
 * compare.py), so a response can be typed without a mapping layer that could
 * drift from the Python side.
 */
import { Token } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

/**
 * The Ship sidebar. Each stage of the loop adds one panel: Experiments now;
 * Models, Services, Drift and Cost from their own plugins as those stages land.
 */
export interface IShipSidebar {
  /**
   * Add a stage panel; lower ranks come first (Experiments 100, Models 200,
   * Services 300, Drift 400, Cost 500, Review 600, Workspace 900).
   */
  addPanel(panel: Widget, rank: number): void;
}

/** The token of the Ship sidebar. */
export const IShipSidebar = new Token<IShipSidebar>(
  'kernel-magics:IShipSidebar',
  'The Ship sidebar, to which stage plugins add their panels.'
);

/**
 * The workspace the server extension resolved (`GET /ship/api/workspace`).
 */
export interface IWorkspaceInfo {
  /** Absolute path of the project root that holds (or will hold) `.ship/`. */
  root: string;
  /** The MLflow tracking URI runs of this workspace are written to. */
  tracking_uri: string;
  /** Base URL of the MLflow UI, when one is configured or the store is a server. */
  ui_url: string | null;
  /** Version of the `kernel_magics` package serving the API. */
  version: string;
}

/**
 * The body of every error the Ship REST API answers.
 */
export interface IErrorBody {
  /** What went wrong and, where known, what to do about it. */
  error: string;
  /** The whole message, when `error` names the kind of error only. */
  message?: string;
}

/** A data fingerprint: full-content digest and shape of data a run read. */
export interface IDataInput {
  name: string;
  digest: string;
  shape: number[] | null;
  context: string | null;
}

/** Resources a run used and their price; money is always an estimate. */
export interface IRunCost {
  wall_s: number | null;
  cpu_s: number | null;
  gpu_s: number | null;
  peak_memory_mb: number | null;
  amount: number | null;
  currency: string | null;
  basis: string | null;
  estimated: boolean;
}

/** One run in a list (`GET /ship/api/runs`). */
export interface IRun {
  /** The MLflow run id once written, else the spool record id. */
  id: string;
  run_id: string | null;
  record_id: string | null;
  name: string;
  experiment: string;
  experiment_id: string | null;
  status: string;
  start_time_ms: number;
  end_time_ms: number | null;
  /** False while the record waits in the spool for the background writer. */
  written: boolean;
  notebook: string | null;
  params: { [key: string]: string };
  metrics: { [key: string]: number | null };
  data: IDataInput[];
  cost: IRunCost | null;
  error: string | null;
  pending_reason: string | null;
  /** The run in the MLflow UI, when one is configured. */
  url: string | null;
}

/** `GET /ship/api/runs`: newest first. */
export interface IRunPage {
  runs: IRun[];
  /** Every match, beyond `limit` too; null when the store cannot say cheaply. */
  total: number | null;
  truncated: boolean;
  workspace: string;
  notebook: string | null;
  experiment: string | null;
  ui_url: string | null;
}

/** The query of `GET /ship/api/runs`. */
export interface IRunQuery {
  /** Notebook path relative to the server root; its workspace is used. */
  notebook: string | null;
  experiment?: string | null;
  limit?: number;
}

/** Packages added, removed or changed since the experiment's previous run. */
export interface IEnvironmentChange {
  previous_record: string | null;
  added: { [name: string]: string };
  removed: { [name: string]: string };
  changed: { [name: string]: [string, string] };
  python_changed: boolean;
}

/** The interpreter and packages a run used. */
export interface IEnvironmentInfo {
  python: string | null;
  platform: string | null;
  gpus: string | null;
  lock_digest: string | null;
  package_count: number | null;
  change: IEnvironmentChange | null;
}

/** Where the code came from. */
export interface IGitInfo {
  commit: string | null;
  branch: string | null;
  dirty: boolean | null;
  repo_url: string | null;
}

/** `GET /ship/api/runs/{id}`: one run in full. */
export interface IRunDetail extends IRun {
  tags: { [key: string]: string };
  artifact_uri: string | null;
  environment: IEnvironmentInfo | null;
  git: IGitInfo | null;
  cell_source: string | null;
  has_snapshot: boolean;
}

/** An experiment (`GET /ship/api/experiments`). */
export interface IExperiment {
  experiment_id: string | null;
  name: string;
  run_count: number | null;
  pending_count: number;
  last_start_time_ms: number | null;
}

/** `GET /ship/api/experiments`. */
export interface IExperimentList {
  workspace: string;
  experiments: IExperiment[];
}

/** `GET /ship/api/runs/{id}/notebook`: the notebook saved when the run's cell ran. */
export interface INotebookSnapshot {
  id: string;
  run_id: string | null;
  run_name: string;
  /** The notebook's file name. */
  name: string;
  /** nbformat JSON. */
  content: { [key: string]: unknown };
}

/** One key across compared runs: a value per run (null: absent). */
export interface IValueRow<T> {
  key: string;
  values: (T | null)[];
  differs: boolean;
}

/** A package whose version differs between compared runs. */
export interface IPackageRow {
  name: string;
  versions: (string | null)[];
}

/** One dataset name across compared runs. */
export interface IDataRow {
  name: string;
  values: (IDataInput | null)[];
  differs: boolean;
}

/** The compared runs' environments. */
export interface IEnvironmentComparison {
  python: IValueRow<string>;
  platform: IValueRow<string>;
  packages: IPackageRow[];
  same_count: number;
  locked: boolean[];
}

/** The compared runs' cells. */
export interface ICodeComparison {
  sources: (string | null)[];
  /** Unified diff of each run's cell against the first run's. */
  diffs: (string | null)[];
  /** 1-based numbers of each run's lines that differ. */
  changed_lines: number[][];
  identical: boolean;
}

/** A compared run's header. */
export interface IRunHeader {
  id: string;
  name: string;
  experiment: string;
  status: string;
  start_time_ms: number;
  written: boolean;
}

/** `GET /ship/api/compare?ids=a,b,…`: one column per run, in the order asked. */
export interface IRunComparison {
  runs: IRunHeader[];
  params: IValueRow<string>[];
  metrics: IValueRow<number>[];
  cost: IValueRow<number>[];
  environment: IEnvironmentComparison;
  data: IDataRow[];
  code: ICodeComparison;
  notes: string[];
}

/** A registered model (`GET /ship/api/models`). */
export interface IModelSummary {
  name: string;
  versions: number;
  latest_version: string | null;
  /** Alias → version. */
  aliases: { [alias: string]: string };
  updated_ms: number;
}

/** `GET /ship/api/models`: most recently updated first. */
export interface IModelList {
  workspace: string;
  models: IModelSummary[];
}

/** One model version on the leaderboard (kernel_magics/export/registry.py `LeaderboardRow`). */
export interface ILeaderboardRow {
  version: string;
  aliases: string[];
  created_ms: number;
  precision: string | null;
  exporter: string | null;
  metric_name: string | null;
  metric: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  batch32_p50_ms: number | null;
  size_bytes: number | null;
  training_cost: number | null;
  cost_currency: string | null;
  parity: string;
  parity_max_abs_error: number | null;
  run_id: string | null;
  int8_change: number | null;
  int8_change_unit: string | null;
  /** The name of the MLflow run that produced the version (null: no run, or it is gone). */
  run_name: string | null;
  /** That run's params, as MLflow stores them (strings). */
  params: { [key: string]: string };
}

/** `GET /ship/api/models/{name}`: one row per version, oldest first. */
export interface ILeaderboard {
  name: string;
  versions: ILeaderboardRow[];
}

/** `PUT /ship/api/models/{name}/aliases/{alias}`: the alias moved. */
export interface IAliasChange {
  name: string;
  alias: string;
  version: string;
  previous: string | null;
}

/** A built bundle version of a service. */
export interface IServiceVersion {
  version: string;
  path: string;
  created: string | null;
  model: string | null;
  model_version: string | null;
}

/** The local `ship serve` of a service (kernel_magics/release/services.py `LocalProcess`). */
export interface ILocalProcess {
  pid: number;
  port: number;
  version: string | null;
  started: string;
  alive: boolean;
  /** `GET /v2/health/ready` answered 200. */
  ready: boolean;
  url: string;
}

/** Requests in the prediction log over the last `window_s` seconds. */
export interface ITraffic {
  window_s: number;
  requests: number;
  rate_per_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  error_rate: number | null;
}

/** A service of the workspace (`GET /ship/api/services`). */
export interface IService {
  name: string;
  /** Newest first. */
  versions: IServiceVersion[];
  latest: string | null;
  running: ILocalProcess | null;
  traffic: ITraffic;
}

/** `GET /ship/api/services`. */
export interface IServiceList {
  workspace: string;
  services: IService[];
}

/** `POST /ship/api/services`: the bundle built (kernel_magics/bundle/build.py `BuildResult`). */
export interface IBuildResult {
  name: string;
  version: string;
  path: string;
  model_name: string;
  model_version: string;
  run_id: string | null;
  serve_cells: number;
  features: string[];
  artifact_uri: string | null;
}

/**
 * Shapes of the Drift and Cost answers (kernel_magics/monitor/report.py `DriftReport`,
 * kernel_magics/cost/service.py). Field names match the JSON on the wire.
 */

/** Histogram of a numeric feature: `counts[i]` rows in `[edges[i], edges[i + 1])`. */
export interface INumericBins {
  edges: number[];
  counts: number[];
}

/** Counts of a categorical feature's top values (and "other"). */
export interface ICategoricalBins {
  categories: string[];
  counts: number[];
}

/** One statistical test behind a feature's status. */
export interface IDriftTest {
  method: string;
  score: number | null;
  p_value: number | null;
  threshold: number;
  drifted: boolean;
}

/** One feature (or the prediction) in a drift report. */
export interface IFeatureDrift {
  feature: string;
  kind: 'numeric' | 'categorical';
  status: 'ok' | 'drift' | 'empty' | 'missing' | 'new';
  method: string;
  score: number | null;
  threshold: number;
  drifted: boolean;
  tests: IDriftTest[];
  note: string | null;
  reference: INumericBins | ICategoricalBins | null;
  current: INumericBins | ICategoricalBins | null;
}

/** A past window: each feature's score, and which drifted. */
export interface IDriftWindow {
  start: string;
  end: string;
  rows: number;
  scores: { [feature: string]: number | null };
  drifted: string[];
  dataset_drifted: boolean;
}

/** `GET /ship/api/services/{name}/drift`: the current window against the reference. */
export interface IDriftReport {
  service: string;
  version: string | null;
  window: { length_s: number; start: string | null; end: string | null };
  reference: { rows: number | null; path: string | null };
  current_rows: number;
  thresholds: { [key: string]: unknown };
  dataset: {
    drifted: boolean;
    share: number;
    threshold: number;
    drifted_features: string[];
    method: string;
  };
  features: IFeatureDrift[];
  prediction: IFeatureDrift | null;
  performance: {
    metric: string;
    value: number;
    labelled: number;
    method: string;
  } | null;
  history: IDriftWindow[];
  notes: string[];
}

/** The query of `GET /ship/api/services/{name}/drift`. */
export interface IDriftQuery {
  /** A duration like `1h`; empty: the configured window. */
  window?: string | null;
  /** How many past windows; empty: the configured number. */
  history?: number | null;
  notebook?: string | null;
}

/**
 * One tracked run's cost: resources measured in the kernel, money estimated. The run's
 * fields as in `IRun`, the cost's as in `IRunCost`, with which figures are which.
 */
export interface IRunCostRow
  extends Pick<
      IRun,
      | 'id'
      | 'run_id'
      | 'record_id'
      | 'name'
      | 'experiment'
      | 'notebook'
      | 'status'
      | 'start_time_ms'
      | 'end_time_ms'
      | 'written'
    >,
    Omit<IRunCost, 'estimated'> {
  /** Names of the figures read from the operating system. */
  measured: string[];
  /** Names of the figures computed from a price table (money). */
  estimated: string[];
}

/** One bucket of a service's usage over time. */
export interface IUsagePoint {
  start: string;
  end: string;
  requests: number;
  predictions: number;
  cpu_s: number;
  cpu_s_per_1k_predictions: number | null;
  amount: number;
}

/** One model version of a service. */
export interface IVersionCost {
  model: string;
  version: string;
  requests: number;
  errors: number;
  predictions: number;
  cpu_s: number;
  process_wall_s: number;
  cpu_s_per_1k_predictions: number | null;
  amount: number;
  amount_per_1k_predictions: number | null;
  measured: string[];
  estimated: string[];
}

/** `GET /ship/api/services/{name}/cost`: usage from the serving processes' records. */
export interface IServiceCost {
  name: string;
  since: string | null;
  first: string | null;
  last: string | null;
  processes: number;
  records: number;
  requests: number;
  errors: number;
  predictions: number;
  cpu_s: number;
  cpu_user_s: number;
  cpu_system_s: number;
  startup_cpu_s: number;
  process_wall_s: number;
  peak_rss_mb: number;
  cpu_s_per_1k_predictions: number | null;
  amount: number;
  amount_per_1k_predictions: number | null;
  currency: string;
  basis: string;
  measured: string[];
  estimated: string[];
  versions: IVersionCost[];
  bucket_s: number;
  series: IUsagePoint[];
  notes: string[];
  log_dir: string;
}

/** `GET /ship/api/cost`: the notebook's runs, the services, and the totals. */
export interface ICostSummary {
  runs: IRunCostRow[];
  services: IServiceCost[];
  totals: {
    runs: { count: number; wall_s: number; cpu_s: number; gpu_s: number; amount: number };
    services: {
      count: number;
      cpu_s: number;
      predictions: number;
      cpu_s_per_1k_predictions: number | null;
      amount: number;
    };
    amount: number;
    measured: string[];
    estimated: string[];
  };
  currency: string;
  notebook: string | null;
  since: string | null;
  notes: string[];
  workspace: string;
}

/**
 * Shapes of a service's release (kernel_magics/serving/release.py and the release
 * stage): `GET|POST /ship/api/services/{name}/release`, and its traffic per version
 * over time, `GET /ship/api/services/{name}/timeline`.
 */

/** What a release check compares: error rate, latency, disagreement, accuracy. */
export type ReleaseMetric =
  | 'error_rate'
  | 'latency_p50_ms'
  | 'latency_p99_ms'
  | 'disagreement'
  | 'accuracy';

/** One check of the canary against the champion on live traffic. */
export interface IReleaseCheck {
  /** A `ReleaseMetric`; another name is shown as it is. */
  metric: string;
  champion: number | null;
  canary: number | null;
  /** The statistical test, e.g. "Fisher's exact test (one-sided)". */
  test: string;
  p_value: number | null;
  n_champion: number;
  n_canary: number;
  /** The threshold in words, e.g. "p < 0.01". */
  threshold: string;
  /** null: not enough data yet. */
  passed: boolean | null;
}

/** The canary of a release: its share of requests and the steps the gate moves it up. */
export interface ICanary {
  version: string;
  percent: number;
  steps: number[];
  /** When the current step began. */
  started: string;
}

/** What a release decision did. */
export type ReleaseAction = 'canary' | 'step' | 'promote' | 'rollback' | 'shadow' | 'unshadow';

/** One decision in `.ship/services/NAME/releases.jsonl`, with the evidence behind it. */
export interface IReleaseDecision {
  time: string;
  action: ReleaseAction;
  version: string;
  /** True when the gate made it; false when a person did. */
  automatic: boolean;
  percent: number | null;
  reason: string;
  evidence: IReleaseCheck[];
  /** How the MLflow aliases moved, or why they did not. */
  aliases?: string | null;
}

/** The canary's live comparison with the champion. */
export interface IReleaseComparison {
  version: string;
  status: 'waiting' | 'passing' | 'failing';
  reason: string;
  checks: IReleaseCheck[];
}

/** A champion / shadow pair of figures. */
export interface IShadowPair {
  champion: number | null;
  shadow: number | null;
}

/** How often a shadow agreed with the champion on one slice of the rows. */
export interface IAgreementSlice {
  value: string;
  /** Rows in the slice. */
  requests: number;
  agreement: number | null;
}

/** A shadow's answers against the champion's on the same requests. */
export interface IShadowReport {
  version: string;
  /** Since when: the shadow was added. */
  since?: string;
  /** Copies the shadow scored. */
  requests: number;
  /** Requests answered without a copy (the shadow's queue was full, or it was loading). */
  dropped: number;
  /** Share of rows on which the shadow's prediction matched the champion's answer. */
  agreement: number | null;
  /** Rows compared (a request may carry several). */
  rows?: number;
  /** Per class the champion predicted. */
  by_class: IAgreementSlice[];
  /** Per category of each categorical feature. */
  by_feature: (IAgreementSlice & { feature: string })[];
  /** Predictions that changed: the champion's class `from`, the shadow's `to`. */
  flips: { from: string; to: string; count: number }[];
  latency_p50_ms: IShadowPair;
  latency_p99_ms: IShadowPair;
  error_rate: IShadowPair;
}

/** `GET /ship/api/services/{name}/release`: the release now, its decisions and reports. */
export interface IRelease {
  service: string;
  champion: string;
  canary: ICanary | null;
  shadows: string[];
  /** Built versions, newest first. */
  versions: string[];
  /** A local `ship serve` follows this release. */
  running: boolean;
  /** Newest first, at most 50. */
  decisions: IReleaseDecision[];
  /** null when there is no canary. */
  comparison: IReleaseComparison | null;
  shadow_reports: IShadowReport[];
  /** The gate's settings (`[release]` of ship.toml). */
  settings?: { [key: string]: unknown };
}

/** The body of `POST /ship/api/services/{name}/release`: one change by hand. */
export type IReleaseChange =
  | { action: 'canary'; version: string; percent: number; steps?: number[] }
  | { action: 'shadow' | 'unshadow'; version: string }
  | { action: 'promote' | 'rollback' };

/** One version's requests in one time bucket. */
export interface ITimelinePoint {
  /** The bucket's start. */
  time: string;
  version: string;
  requests: number;
  rate_per_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
  error_rate: number | null;
}

/** `GET /ship/api/services/{name}/timeline?window=1h`: traffic per version over time. */
export interface ITimeline {
  window_s: number;
  bucket_s: number;
  versions: string[];
  points: ITimelinePoint[];
}

/** One set of `ship retrain`'s champion/challenger gate (kernel_magics/retrain/gate.py). */
export interface IRetrainCheck {
  /** `recent`: the newest labelled production rows; `holdout`: the champion's --eval rows. */
  name: string;
  /** `accuracy` or `rmse`. */
  metric: string;
  champion: number | null;
  challenger: number | null;
  /** The bootstrap interval of challenger − champion; null when not computed. */
  interval: [number, number] | null;
  /** null: not judged (the reason says why). */
  passed: boolean | null;
  rows: number;
  reason: string;
}

/** One line of `.ship/services/NAME/loop.jsonl`: the fields every event has, then each kind's. */
export interface ILoopEvent {
  time: string;
  /** watch, trigger, retrain, backoff, release or error (another kind reads as it is). */
  kind: string;
  message: string;
  /** retrain: canary, passed, rejected, no-holdout, too-little-feedback, first-model, failed. */
  decision?: string;
  /** retrain: the champion's and the challenger's versions. */
  champion?: string | null;
  challenger?: string | null;
  /** retrain: the gate. */
  checks?: IRetrainCheck[];
  /** retrain: the labelled production rows, those trained on and those held out. */
  data?: { labelled_rows?: number; training_rows?: number; recent_rows?: number; path?: string | null };
  /** retrain: the canary it started. */
  canary?: { version: string; percent: number; steps: number[] } | null;
  /** retrain: how long it took. */
  seconds?: number;
  /** trigger: drift or accuracy. */
  reason?: string;
  /** backoff: no retraining before this time. */
  until?: string;
  rejections?: number;
  /** release: the release decision, its version, and whether the gate made it. */
  action?: string;
  version?: string;
  automatic?: boolean;
  /** watch: the watcher's process. */
  pid?: number;
}

/** What `ship watch NAME` keeps between looks (`watch.json`). */
export interface ILoopState {
  /** 0 when no watcher holds the service. */
  pid: number;
  started: string | null;
  last_check: string | null;
  last_retrain: string | null;
  /** Rejected challengers since the last released one. */
  rejections: number;
  backoff_until: string | null;
  /** The canary a retraining released, until its promotion or rollback. */
  canary: string | null;
  releases_seen: number;
}

/** `GET /ship/api/services/{name}/loop`: what `ship watch NAME --status --json` prints. */
export interface ILoopStatus {
  service: string;
  /** A `ship watch NAME` process is alive. */
  running: boolean;
  state: ILoopState;
  /** release.json as it is now. */
  release: { service: string; champion: string; canary: ICanary | null; shadows: string[] };
  /** `[loop]` of ship.toml, defaults filled in. */
  settings: { [key: string]: unknown };
  /** Oldest first. */
  events: ILoopEvent[];
}

/** The review scores of one row (`serving/review.py`); null where not computed. */
export interface IReviewScores {
  /** The top class's probability. */
  confidence: number | null;
  /** Top minus second probability. */
  margin: number | null;
  /** Normalised entropy of the probabilities, 0..1. */
  entropy: number | null;
  /** How many training ranges the farthest feature lies outside its training range. */
  ood: number | null;
  /** That feature. */
  ood_feature: string | null;
}

/** One routed row waiting for a label. */
export interface IReviewItem {
  request_id: string;
  /** Its row in the request. */
  row: number;
  /** Rows in its request. */
  rows: number;
  time: string;
  version: string;
  /** Feature → value of this row. */
  inputs: { [feature: string]: unknown };
  prediction: unknown;
  /** Class label → probability; null for a regressor or a model without them. */
  probabilities: { [label: string]: number } | null;
  scores: IReviewScores;
  /** Why it was routed (`review/policy.py`): confidence, margin, entropy, ood or audit. */
  reason: string;
  /** Its label, once labelled (the queue lists unlabelled rows: null). */
  label: unknown;
}

/** `GET /ship/api/services/{name}/review`: what `ship review NAME --json` prints. */
export interface IReviewQueue {
  name: string;
  /** Oldest first. */
  items: IReviewItem[];
  pending: number;
  /** Rows answered in the window (`settings.since`) whose review scores the log holds. */
  scored: number;
  /** Of which the policy routed. */
  routed: number;
  /** Of the routed, labelled. */
  labelled: number;
  /** Today (UTC): routed, predictions seen and the day's budget. */
  today: { routed: number; predictions: number; budget: number };
  by_reason: { [reason: string]: number };
  /** The champion's class labels; null for a regressor. */
  classes: unknown[] | null;
  /** The features form an image of this size (row-major in `features`). */
  image: { height: number; width: number } | null;
  /** The image's features in row-major order; null when not an image. */
  features: string[] | null;
  /** `[review]` of ship.toml, defaults filled in. */
  settings: { since: string; [key: string]: unknown };
}

/** One label to write: row `row` of request `request_id` is `value` (null: take it back). */
export interface IReviewLabel {
  request_id: string;
  row: number;
  value: unknown;
}

/** `POST /ship/api/services/{name}/review/labels`: each request's ground truth now. */
export interface IReviewLabelled {
  labelled: { request_id: string; ground_truth: unknown[] }[];
}
