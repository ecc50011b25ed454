// Every error mosn-ts raises or reports has a stable code. The full list is
// in docs/errors.md; test/common/errors.test.ts fails when the two disagree.

export const ErrorCodes = {
  // config
  MOSN_ERR_CONFIG_READ: 'The config file could not be read.',
  MOSN_ERR_CONFIG_INVALID: 'The config file failed validation; every problem is listed as FILE:LINE:COL path: message.',
  // process / lifecycle
  MOSN_ERR_ALREADY_RUNNING: 'Another supervisor holds the instance lock for this control socket.',
  MOSN_ERR_LISTEN: 'A listener could not be bound (address in use, permission denied, bad address).',
  MOSN_ERR_WORKER_START: 'A worker failed to start or did not report ready in time.',
  MOSN_ERR_WORKER_CRASH_LOOP: 'Workers keep dying (five unexpected exits within a minute); restarts back off up to 30 s.',
  MOSN_ERR_SHUTTING_DOWN: 'The supervisor is stopping and refuses the command.',
  MOSN_ERR_INSTANCE_LOCK: 'The instance lock next to the control socket could not be taken for a reason other than another running supervisor (permissions, read-only or missing directory).',
  MOSN_ERR_INTERNAL: 'An unexpected internal error (a bug); the supervisor log has the stack.',
  // control socket
  MOSN_ERR_CONTROL_BAD_REQUEST: 'A control request was not valid JSON, not an object, not a known command, or longer than 64 KiB.',
  MOSN_ERR_CONTROL_UNAVAILABLE: 'No supervisor answers on the control socket.',
  MOSN_ERR_CONTROL_TIMEOUT: 'The supervisor did not answer a control request in time.',
  MOSN_ERR_IN_PROGRESS: 'A reload or upgrade is already in progress.',
  MOSN_ERR_RELOAD_FAILED: 'A reload or upgrade failed and was rolled back; the reason is attached.',
  MOSN_ERR_RELEASE_INVALID: 'The release directory given to upgrade is missing or incomplete.',
  // IPC
  MOSN_ERR_IPC_PROTOCOL: 'An IPC message had an unknown type or an unsupported protocol version.',
  // data plane (appear in the access log as `error`)
  MOSN_ERR_NO_ROUTE: 'No virtual host or route matched the request (404).',
  MOSN_ERR_NO_HEALTHY_UPSTREAM: 'The cluster has no endpoint to send the request to (503).',
  MOSN_ERR_UPSTREAM_CONNECT: 'The upstream refused or reset the connection attempt (502).',
  MOSN_ERR_UPSTREAM_CONNECT_TIMEOUT: 'Connecting to the upstream timed out (504 for HTTP).',
  MOSN_ERR_UPSTREAM_HEADERS_TIMEOUT: 'The upstream did not send response headers within headers_timeout (504).',
  MOSN_ERR_UPSTREAM_REQUEST_TIMEOUT: 'The route timeout expired before the upstream answered (504).',
  MOSN_ERR_UPSTREAM_RESET: 'The upstream closed or reset the connection mid-exchange (502 if no response started).',
  MOSN_ERR_UPSTREAM_PROTOCOL: 'The upstream sent an invalid HTTP response (502).',
  MOSN_ERR_UPSTREAM_IDLE_TIMEOUT: 'A proxied TCP session or tunnel saw no bytes for idle_timeout and was closed.',
  MOSN_ERR_DOWNSTREAM_RESET: 'The client closed or reset the connection before the exchange completed.',
  MOSN_ERR_DOWNSTREAM_HEADERS_TIMEOUT: 'The client did not send complete request headers in time (408).',
  MOSN_ERR_BAD_REQUEST: 'The client sent a malformed request (400).',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class MosnError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'MosnError';
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** One problem found in a config file, positioned in its source. */
export interface ConfigIssue {
  readonly file: string;
  /** 1-based; 0 when the position is unknown. */
  readonly line: number;
  readonly col: number;
  /** Dotted path such as `listeners[0].address`; '' for the document. */
  readonly path: string;
  readonly message: string;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col} ${i.path === '' ? '(root)' : i.path}: ${i.message}`;
}

export class ConfigError extends MosnError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super('MOSN_ERR_CONFIG_INVALID', issues.map(formatIssue).join('\n'));
    this.issues = issues;
    this.name = 'ConfigError';
  }
}

export function isMosnError(e: unknown): e is MosnError {
  return e instanceof MosnError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
