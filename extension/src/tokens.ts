/**
 * Shapes of the data the Ship REST API (`/ship/api/…`) answers.
 *
 * Field names match the JSON on the wire, so a response can be typed without
 * a mapping layer that could drift from the Python side.
 */

/**
 * The workspace the server extension resolved from Jupyter's root directory
 * (`GET /ship/api/workspace`).
 */
export interface IWorkspaceInfo {
  /** Absolute path of the project root that holds (or will hold) `.ship/`. */
  root: string;
  /** The MLflow tracking URI runs of this workspace are written to. */
  tracking_uri: string;
  /** Version of the `kernel_magics` package serving the API. */
  version: string;
}

/**
 * The body of every error the Ship REST API answers.
 */
export interface IErrorBody {
  /** What went wrong and, where known, what to do about it. */
  error: string;
}
