// RawConfig (as written, already validated) -> Config (as consumed): defaults
// filled in, durations in ms, addresses parsed, paths absolute, names and
// domains in their canonical case.

import os from 'node:os';
import path from 'node:path';
import { parseHostPort } from './address.js';
import { parseDuration } from './duration.js';
import { DEFAULTS, type RawConfig } from './schema.js';
import type {
  Cluster,
  Config,
  DirectResponse,
  HeaderMatch,
  HostPort,
  Listener,
  Redirect,
  Route,
  RouteAction,
  RouteMatch,
  VirtualHost,
} from './types.js';

type RawListener = RawConfig['listeners'][number];
type RawVirtualHost = NonNullable<RawListener['virtual_hosts']>[number];
type RawRoute = RawVirtualHost['routes'][number];
type RawCluster = NonNullable<RawConfig['clusters']>[number];

/** Only call on a config that passed both the schema and the semantic checks. */
export function normalise(raw: RawConfig, file: string): Config {
  const dir = path.dirname(file);
  const accessLog = raw.log?.access_log ?? DEFAULTS.log.access_log;
  return {
    source: file,
    workers: raw.workers === undefined || raw.workers === 'auto' ? os.availableParallelism() : raw.workers,
    control_socket: path.resolve(dir, raw.control_socket ?? DEFAULTS.control_socket),
    admin: { address: address(raw.admin?.address ?? DEFAULTS.admin.address, 0) },
    upgrade: {
      ready_timeout: ms(raw.upgrade?.ready_timeout ?? DEFAULTS.upgrade.ready_timeout),
      drain_timeout: ms(raw.upgrade?.drain_timeout ?? DEFAULTS.upgrade.drain_timeout),
      max_draining_generations: raw.upgrade?.max_draining_generations ?? DEFAULTS.upgrade.max_draining_generations,
    },
    log: {
      level: raw.log?.level ?? DEFAULTS.log.level,
      access_log: accessLog === 'stdout' || accessLog === 'off' ? accessLog : path.resolve(dir, accessLog),
    },
    listeners: raw.listeners.map(listener),
    clusters: (raw.clusters ?? []).map(cluster),
  };
}

function listener(l: RawListener): Listener {
  const protocol = l.protocol ?? DEFAULTS.listener.protocol;
  return omitUndefined({
    name: l.name,
    address: address(l.address, 0),
    protocol,
    virtual_hosts: protocol === 'http' ? (l.virtual_hosts ?? []).map(virtualHost) : [],
    cluster: protocol === 'tcp' ? l.cluster : undefined,
    timeouts: {
      idle: ms(l.timeouts?.idle ?? DEFAULTS.listener.timeouts.idle),
      request_headers: ms(l.timeouts?.request_headers ?? DEFAULTS.listener.timeouts.request_headers),
    },
  });
}

function virtualHost(v: RawVirtualHost): VirtualHost {
  return {
    name: v.name,
    domains: v.domains.map((d) => d.toLowerCase()),
    routes: v.routes.map((r, i) => route(r, `${v.name}/${i}`)),
  };
}

function route(r: RawRoute, defaultName: string): Route {
  const match: RouteMatch = omitUndefined({
    prefix: r.match.prefix,
    path: r.match.path,
    regex: r.match.regex,
    headers: (r.match.headers ?? []).map((h): HeaderMatch => omitUndefined({
      name: h.name.toLowerCase(),
      exact: h.exact,
      regex: h.regex,
      // A bare `name` means "the header is present".
      present: h.present ?? (h.exact === undefined && h.regex === undefined ? true : undefined),
      invert: h.invert ?? DEFAULTS.header_match.invert,
    })),
  });
  const action: RouteAction | undefined = r.route && omitUndefined({
    cluster: r.route.cluster,
    timeout: ms(r.route.timeout ?? DEFAULTS.route.timeout),
    prefix_rewrite: r.route.prefix_rewrite,
    host_rewrite: r.route.host_rewrite,
  });
  const direct: DirectResponse | undefined = r.direct_response && {
    status: r.direct_response.status,
    body: r.direct_response.body ?? DEFAULTS.direct_response.body,
    content_type: r.direct_response.content_type ?? DEFAULTS.direct_response.content_type,
  };
  const redirect: Redirect | undefined = r.redirect && omitUndefined({
    status: r.redirect.status ?? DEFAULTS.redirect.status,
    scheme: r.redirect.scheme,
    host: r.redirect.host,
    path: r.redirect.path,
    prefix_rewrite: r.redirect.prefix_rewrite,
    strip_query: r.redirect.strip_query ?? DEFAULTS.redirect.strip_query,
  });
  return omitUndefined({ name: r.name ?? defaultName, match, route: action, direct_response: direct, redirect });
}

function cluster(c: RawCluster): Cluster {
  return {
    name: c.name,
    lb: c.lb ?? DEFAULTS.cluster.lb,
    endpoints: c.endpoints.map((e) => address(e, 1)),
    connect_timeout: ms(c.connect_timeout ?? DEFAULTS.cluster.connect_timeout),
    idle_timeout: ms(c.idle_timeout ?? DEFAULTS.cluster.idle_timeout),
    headers_timeout: ms(c.headers_timeout ?? DEFAULTS.cluster.headers_timeout),
    max_connections_per_endpoint: c.max_connections_per_endpoint ?? DEFAULTS.cluster.max_connections_per_endpoint,
  };
}

// The checks that ran before make these conversions infallible; a failure
// here is a bug in them, not in the config.

function ms(value: string | number): number {
  const result = parseDuration(value);
  if (result === undefined) throw new Error(`internal error: unvalidated duration ${JSON.stringify(value)}`);
  return result;
}

function address(text: string, minPort: 0 | 1): HostPort {
  const result = parseHostPort(text, minPort);
  if (!result.ok) throw new Error(`internal error: unvalidated address: ${result.error}`);
  return result.value;
}

/** Drops keys whose value is undefined, so optional fields are absent rather than undefined. */
function omitUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
