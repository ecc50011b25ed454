// The effective (validated, defaulted, normalised) configuration.
// Everything above src/config consumes only these types: durations are
// milliseconds, addresses are parsed, defaults are filled in, and the whole
// object is deeply frozen by the loader.

export type Protocol = 'http' | 'tcp';
export type LbPolicy = 'round_robin' | 'random' | 'least_request';

export interface HostPort {
  /** IPv4/IPv6 literal or host name as written (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** Canonical text form, `host:port` or `[v6]:port`. */
  readonly text: string;
}

export interface HeaderMatch {
  /** Lower-cased header name. */
  readonly name: string;
  readonly exact?: string;
  readonly regex?: string;
  /** true: header must be present; false: must be absent. */
  readonly present?: boolean;
  /** Negate the whole match. */
  readonly invert: boolean;
}

export interface RouteMatch {
  readonly prefix?: string;
  readonly path?: string;
  readonly regex?: string;
  readonly headers: readonly HeaderMatch[];
}

export interface RouteAction {
  readonly cluster: string;
  /** Whole-request timeout (headers received from upstream), ms; 0 = none. */
  readonly timeout: number;
  readonly prefix_rewrite?: string;
  readonly host_rewrite?: string;
}

export interface DirectResponse {
  readonly status: number;
  readonly body: string;
  readonly content_type: string;
}

export interface Redirect {
  /** 301 | 302 | 303 | 307 | 308 */
  readonly status: number;
  readonly scheme?: string;
  readonly host?: string;
  readonly path?: string;
  readonly prefix_rewrite?: string;
  readonly strip_query: boolean;
}

export interface Route {
  readonly name: string;
  readonly match: RouteMatch;
  readonly route?: RouteAction;
  readonly direct_response?: DirectResponse;
  readonly redirect?: Redirect;
}

export interface VirtualHost {
  readonly name: string;
  /** Lower-cased; `*`, `*.suffix` or exact (port stripped when matching). */
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
}

export interface ListenerTimeouts {
  /** Downstream keep-alive idle timeout, ms. */
  readonly idle: number;
  /** Time to receive the complete request headers, ms (HTTP only). */
  readonly request_headers: number;
}

export interface Listener {
  readonly name: string;
  readonly address: HostPort;
  readonly protocol: Protocol;
  readonly virtual_hosts: readonly VirtualHost[];
  /** For protocol tcp. */
  readonly cluster?: string;
  readonly timeouts: ListenerTimeouts;
}

export interface Cluster {
  readonly name: string;
  readonly lb: LbPolicy;
  readonly endpoints: readonly HostPort[];
  /** ms */
  readonly connect_timeout: number;
  /** Upstream keep-alive idle timeout, ms. */
  readonly idle_timeout: number;
  /** Time for the upstream to send response headers, ms. */
  readonly headers_timeout: number;
  /** Max pooled connections per endpoint. */
  readonly max_connections_per_endpoint: number;
}

export interface AdminConfig {
  readonly address: HostPort;
}

export interface UpgradeConfig {
  /** ms */
  readonly ready_timeout: number;
  /** ms */
  readonly drain_timeout: number;
  readonly max_draining_generations: number;
}

export interface LogConfig {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** 'stdout', 'off', or an absolute/relative file path (resolved against the config file). */
  readonly access_log: string;
}

export interface Config {
  /** Absolute path of the file this was loaded from. */
  readonly source: string;
  /** Resolved worker count (auto = CPU count). */
  readonly workers: number;
  /** Absolute path. */
  readonly control_socket: string;
  readonly admin: AdminConfig;
  readonly upgrade: UpgradeConfig;
  readonly log: LogConfig;
  readonly listeners: readonly Listener[];
  readonly clusters: readonly Cluster[];
}
