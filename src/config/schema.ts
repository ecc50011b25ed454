// The schema of the raw config file, as written by an operator. It drives
// validation (ajv) and is emitted as schema/mosn.schema.json for editors.
//
// The schema checks shapes only: types, enums, patterns, ranges and unknown
// keys. Rules that span fields (exactly one route action, references to
// clusters, unique names and addresses, address syntax) live in
// semantics.ts, where they get precise messages.
//
// Two annotation keywords, understood by VS Code's JSON support and read by
// our own error formatter (schema-issues.ts), carry the human message:
// `errorMessage` on unions and `patternErrorMessage` on patterns.

import { Type, type Static, type TString, type TUnsafe } from '@sinclair/typebox';

/** Defaults, as they would be written in the file; normalise.ts applies them. */
export const DEFAULTS = {
  workers: 'auto',
  control_socket: '/run/mosn/mosn.sock',
  admin: { address: '127.0.0.1:9901' },
  upgrade: { ready_timeout: '10s', drain_timeout: '30s', max_draining_generations: 2 },
  log: { level: 'info', access_log: 'stdout' },
  listener: { protocol: 'http', timeouts: { idle: '60s', request_headers: '30s' } },
  route: { timeout: '15s' },
  direct_response: { body: '', content_type: 'text/plain; charset=utf-8' },
  redirect: { status: 301, strip_query: false },
  header_match: { invert: false },
  cluster: {
    lb: 'round_robin',
    connect_timeout: '5s',
    idle_timeout: '60s',
    headers_timeout: '30s',
    max_connections_per_endpoint: 128,
  },
} as const;

export const PROTOCOLS = ['http', 'tcp'] as const;
export const LB_POLICIES = ['round_robin', 'random', 'least_request'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;
export const MAX_WORKERS = 256;

/** One or more `<number><unit>` groups, e.g. `250ms`, `1.5s`, `1m30s`. */
export const DURATION_PATTERN = '^(?:[0-9]+(?:\\.[0-9]+)?(?:ms|s|m|h))+$';
export const DURATION_MESSAGE = 'must be a duration such as "250ms", "10s" or "2m"';
const NAME_PATTERN = '^[A-Za-z0-9_.-]+$';
const NAME_MESSAGE = 'must contain only letters, digits, "_", "." and "-"';

// ---- building blocks -------------------------------------------------------

function StringEnum<const T extends readonly string[]>(values: T, description: string): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });
}

function Name(what: string): TString {
  return Type.String({
    description: `Name of the ${what}: letters, digits, "_", "." and "-".`,
    pattern: NAME_PATTERN,
    patternErrorMessage: NAME_MESSAGE,
  });
}

/** A duration string (`"250ms"`, `"10s"`, `"2m"`, `"1h"`, `"1.5s"`) or an integer number of milliseconds. */
function Duration(description: string, defaultValue?: string) {
  return Type.Union(
    [
      Type.String({ pattern: DURATION_PATTERN }),
      Type.Integer({ minimum: 0 }),
    ],
    {
      description: `${description} A duration such as "250ms", "10s", "2m", "1h" or "1.5s", or an integer number of milliseconds.`,
      errorMessage: DURATION_MESSAGE,
      ...(defaultValue !== undefined && { default: defaultValue }),
    },
  );
}

function Address(description: string, defaultValue?: string): TString {
  return Type.String({
    description: `${description} Written host:port; IPv6 in brackets, e.g. [::1]:8080.`,
    minLength: 1,
    ...(defaultValue !== undefined && { default: defaultValue }),
  });
}

function UrlPath(description: string): TString {
  return Type.String({ description, pattern: '^/', patternErrorMessage: 'must start with "/"' });
}

function Host(description: string): TString {
  return Type.String({
    description,
    pattern: '^[A-Za-z0-9._\\-\\[\\]:]+$',
    patternErrorMessage: 'must be a host name, optionally followed by ":port"',
  });
}

function Obj<P extends Parameters<typeof Type.Object>[0]>(properties: P, description: string) {
  return Type.Object(properties, { additionalProperties: false, description });
}

// ---- the config ------------------------------------------------------------

const HeaderMatchSchema = Obj(
  {
    name: Type.String({
      description: 'Header name (case-insensitive).',
      pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
      patternErrorMessage: 'must be a valid HTTP header name',
    }),
    exact: Type.Optional(Type.String({ description: 'The header value must equal this string.' })),
    regex: Type.Optional(Type.String({ description: 'The header value must match this JavaScript regular expression.' })),
    present: Type.Optional(
      Type.Boolean({ description: 'true: the header must be present; false: it must be absent. The default when neither exact nor regex is given is true.' }),
    ),
    invert: Type.Optional(
      Type.Boolean({ description: 'Negate the result of this matcher.', default: DEFAULTS.header_match.invert }),
    ),
  },
  'Matches one request header. At most one of exact, regex and present.',
);

const RouteMatchSchema = Obj(
  {
    prefix: Type.Optional(UrlPath('Match request paths that start with this prefix.')),
    path: Type.Optional(UrlPath('Match this exact request path (query string excluded).')),
    regex: Type.Optional(
      Type.String({ description: 'Match request paths against this JavaScript regular expression (query string excluded).', minLength: 1 }),
    ),
    headers: Type.Optional(
      Type.Array(HeaderMatchSchema, { description: 'Headers that must all match too.' }),
    ),
  },
  'Which requests this route takes. Exactly one of prefix, path and regex.',
);

const RouteActionSchema = Obj(
  {
    cluster: Type.String({ description: 'Name of the cluster to proxy to.', minLength: 1 }),
    timeout: Type.Optional(
      Duration('Time for the upstream to answer with response headers, counted from the start of the request; "0s" = no timeout.', DEFAULTS.route.timeout),
    ),
    prefix_rewrite: Type.Optional(UrlPath('Replace the matched prefix (or path) with this before proxying.')),
    host_rewrite: Type.Optional(Host('Replace the Host header with this before proxying.')),
  },
  'Proxy the request to a cluster.',
);

const DirectResponseSchema = Obj(
  {
    status: Type.Integer({ description: 'HTTP status code, 200 to 599.', minimum: 200, maximum: 599 }),
    body: Type.Optional(Type.String({ description: 'Response body.', default: DEFAULTS.direct_response.body })),
    content_type: Type.Optional(
      Type.String({ description: 'Content-Type of the response.', minLength: 1, default: DEFAULTS.direct_response.content_type }),
    ),
  },
  'Answer the request from the proxy itself.',
);

const RedirectSchema = Obj(
  {
    status: Type.Optional(
      Type.Unsafe<number>({
        type: 'integer',
        enum: [...REDIRECT_STATUSES],
        description: 'Redirect status code: 301, 302, 303, 307 or 308.',
        default: DEFAULTS.redirect.status,
      }),
    ),
    scheme: Type.Optional(StringEnum(['http', 'https'] as const, 'Scheme of the new URL; default: that of the request.')),
    host: Type.Optional(Host('Host (optionally with :port) of the new URL; default: that of the request.')),
    path: Type.Optional(UrlPath('Path of the new URL, replacing the whole path.')),
    prefix_rewrite: Type.Optional(UrlPath('Replace the matched prefix (or path) with this in the new URL.')),
    strip_query: Type.Optional(
      Type.Boolean({ description: 'Drop the query string from the new URL.', default: DEFAULTS.redirect.strip_query }),
    ),
  },
  'Answer with a redirect to a URL derived from the request.',
);

const RouteSchema = Obj(
  {
    name: Type.Optional(
      Type.String({ description: 'Route name, used in logs and metrics; default "<virtual host>/<index>".', minLength: 1 }),
    ),
    match: RouteMatchSchema,
    route: Type.Optional(RouteActionSchema),
    direct_response: Type.Optional(DirectResponseSchema),
    redirect: Type.Optional(RedirectSchema),
  },
  'One route: a match and exactly one action (route, direct_response or redirect). Routes are tried in order; the first match wins.',
);

const VirtualHostSchema = Obj(
  {
    name: Name('virtual host, unique within the listener'),
    domains: Type.Array(
      Type.String({
        description: '"*", "*.suffix" or an exact host name (case-insensitive; the port of the Host header is ignored).',
        pattern: '^(?:\\*|(?:\\*\\.)?[A-Za-z0-9_-]+(?:\\.[A-Za-z0-9_-]+)*|\\[[0-9A-Fa-f:.]+\\])$',
        patternErrorMessage: 'must be "*", "*.example.com" or a host name (without a port)',
      }),
      { description: 'Host names this virtual host serves. A domain may appear in only one virtual host per listener.', minItems: 1 },
    ),
    routes: Type.Array(RouteSchema, { description: 'Routes, tried in order.', minItems: 1 }),
  },
  'A set of routes for some Host header values.',
);

const ListenerTimeoutsSchema = Obj(
  {
    idle: Type.Optional(
      Duration('How long a downstream connection may stay idle (between requests for http, without bytes for tcp); "0s" = no timeout.', DEFAULTS.listener.timeouts.idle),
    ),
    request_headers: Type.Optional(
      Duration('Time for a client to send the complete request headers (http only); "0s" = no timeout.', DEFAULTS.listener.timeouts.request_headers),
    ),
  },
  'Downstream timeouts.',
);

const ListenerSchema = Obj(
  {
    name: Name('listener, unique; listening sockets are handed over between processes by name'),
    address: Address('Address to listen on; port 0 picks a free port.'),
    protocol: Type.Optional(StringEnum(PROTOCOLS, 'http: an HTTP/1.1 proxy with virtual hosts; tcp: an L4 proxy to one cluster. Default http.')),
    timeouts: Type.Optional(ListenerTimeoutsSchema),
    virtual_hosts: Type.Optional(
      Type.Array(VirtualHostSchema, { description: 'Virtual hosts (http only, required there).', minItems: 1 }),
    ),
    cluster: Type.Optional(
      Type.String({ description: 'Cluster every connection is proxied to (tcp only, required there).', minLength: 1 }),
    ),
  },
  'A listening socket and what to do with its connections.',
);

const ClusterSchema = Obj(
  {
    name: Name('cluster, unique'),
    lb: Type.Optional(StringEnum(LB_POLICIES, 'Load-balancing policy. Default round_robin.')),
    endpoints: Type.Array(Address('An upstream host:port (port 1-65535).'), {
      description: 'Upstream endpoints.',
      minItems: 1,
    }),
    connect_timeout: Type.Optional(Duration('Time to establish an upstream connection; must be greater than 0.', DEFAULTS.cluster.connect_timeout)),
    idle_timeout: Type.Optional(Duration('How long an idle pooled upstream connection is kept alive; "0s" = no timeout.', DEFAULTS.cluster.idle_timeout)),
    headers_timeout: Type.Optional(Duration('Time for the upstream to send response headers once the request is sent; "0s" = no timeout.', DEFAULTS.cluster.headers_timeout)),
    max_connections_per_endpoint: Type.Optional(
      Type.Integer({
        description: 'Maximum number of pooled connections per endpoint.',
        minimum: 1,
        default: DEFAULTS.cluster.max_connections_per_endpoint,
      }),
    ),
  },
  'A named group of upstream endpoints.',
);

export const ConfigSchema = Obj(
  {
    workers: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, maximum: MAX_WORKERS }), Type.Literal('auto')], {
        description: `Number of worker processes, 1 to ${MAX_WORKERS}, or "auto" for one per CPU. Default "auto".`,
        errorMessage: `must be an integer from 1 to ${MAX_WORKERS} or "auto"`,
        default: DEFAULTS.workers,
      }),
    ),
    control_socket: Type.Optional(
      Type.String({
        description: 'Path of the Unix control socket used by mosnctl; relative paths resolve against the config file\'s directory.',
        minLength: 1,
        default: DEFAULTS.control_socket,
      }),
    ),
    admin: Type.Optional(
      Obj({ address: Type.Optional(Address('Address of the admin HTTP endpoint (/metrics, /ready, /config_dump).', DEFAULTS.admin.address)) }, 'Admin HTTP endpoint.'),
    ),
    upgrade: Type.Optional(
      Obj(
        {
          ready_timeout: Type.Optional(Duration('Time a new generation of workers has to report ready before the reload or upgrade is rolled back; must be greater than 0.', DEFAULTS.upgrade.ready_timeout)),
          drain_timeout: Type.Optional(Duration('Time an old generation has to finish its in-flight work before its remaining connections are closed; must be greater than 0.', DEFAULTS.upgrade.drain_timeout)),
          max_draining_generations: Type.Optional(
            Type.Integer({
              description: 'How many old generations may be draining at the same time.',
              minimum: 1,
              default: DEFAULTS.upgrade.max_draining_generations,
            }),
          ),
        },
        'Reload and upgrade behaviour.',
      ),
    ),
    log: Type.Optional(
      Obj(
        {
          level: Type.Optional(StringEnum(LOG_LEVELS, 'Log level: trace, debug, info, warn, error or fatal. Default info.')),
          access_log: Type.Optional(
            Type.String({
              description: '"stdout", "off", or a file path (relative paths resolve against the config file\'s directory).',
              minLength: 1,
              default: DEFAULTS.log.access_log,
            }),
          ),
        },
        'Logging.',
      ),
    ),
    listeners: Type.Array(ListenerSchema, { description: 'Listeners; at least one.', minItems: 1 }),
    clusters: Type.Optional(Type.Array(ClusterSchema, { description: 'Upstream clusters referred to by routes and tcp listeners.' })),
  },
  'Config file of mosn-ts, a MOSN-style L4/L7 proxy. Reference: docs/config.md.',
);

/** The config file as it parses, once it has passed ConfigSchema. */
export type RawConfig = Static<typeof ConfigSchema>;

/** The schema as a standalone JSON Schema document, for editors. */
export function configJsonSchema(): Record<string, unknown> {
  // JSON round trip drops TypeBox's symbol-keyed metadata.
  const body = JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, unknown>;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'mosn-ts configuration',
    ...body,
  };
}
