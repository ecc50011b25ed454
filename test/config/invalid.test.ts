// Invalid configs: each case lists every issue parseConfig must report, in
// order, as `LINE:COL path: message` (the file name is prepended).

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ConfigError, formatIssue, loadConfig, parseConfig } from '../../src/config/index.js';

const FILE = '/etc/mosn/mosn.yaml';
const fixture = (name: string): string => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));

/** The formatted issues parseConfig throws for `text`, or ['(accepted)']. */
function issuesOf(text: string, file = FILE): string[] {
  try {
    parseConfig(text, file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.issues.map(formatIssue);
  }
  return ['(accepted)'];
}

interface Case {
  readonly name: string;
  readonly text: string;
  readonly issues: readonly string[];
}

const cases: readonly Case[] = [
  {
    name: 'YAML syntax error',
    text: `workers: 2
listeners: [ { name: web
clusters: []
`,
    issues: [
      '3:1 (root): invalid YAML: Flow map in block collection must be sufficiently indented and end with a }',
      '3:1 (root): invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
  },
  {
    name: 'duplicate key is a YAML error',
    text: `workers: 2
workers: 3
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '2:1 (root): invalid YAML: Map keys must be unique',
    ],
  },
  {
    name: 'two YAML documents',
    text: `workers: 2
---
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '2:1 (root): invalid YAML: Source contains multiple documents; please use YAML.parseAllDocuments()',
    ],
  },
  {
    name: 'empty file',
    text: ``,
    issues: [
      '1:1 (root): config is empty',
    ],
  },
  {
    name: 'file with only comments',
    text: `# nothing here
# yet
`,
    issues: [
      '1:1 (root): config is empty',
    ],
  },
  {
    name: 'top level is a list',
    text: `- name: web
`,
    issues: [
      '1:1 (root): must be a mapping',
    ],
  },
  {
    name: 'top level is a scalar',
    text: `hello
`,
    issues: [
      '1:1 (root): must be a mapping',
    ],
  },
  {
    name: 'listeners missing',
    text: `workers: 2
`,
    issues: [
      '1:1 (root): missing required key "listeners"',
    ],
  },
  {
    name: 'listeners empty',
    text: `listeners: []
`,
    issues: [
      '1:12 listeners: must not be empty',
    ],
  },
  {
    name: 'listeners with no value',
    text: `listeners:
`,
    issues: [
      '1:1 listeners: must be a list (the value is empty)',
    ],
  },
  {
    name: 'unknown top-level key with hint',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
cluster:
  - name: app
`,
    issues: [
      '10:1 cluster: unknown key "cluster" (did you mean "clusters"?)',
    ],
  },
  {
    name: 'unknown top-level key without hint',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
tracing: { enabled: true }
`,
    issues: [
      '10:1 tracing: unknown key "tracing"',
    ],
  },
  {
    name: 'unknown nested key with did-you-mean',
    text: `listeners:
  - name: web
    adress: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '3:5 listeners[0].adress: unknown key "adress" (did you mean "address"?)',
    ],
  },
  {
    name: 'unknown key that needs quoting in the path',
    text: `admin: { "bind address": 127.0.0.1:9901 }
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:10 admin["bind address"]: unknown key "bind address"',
    ],
  },
  {
    name: 'wrong types',
    text: `workers: "many"
admin: 5
listeners:
  - name: 5
    address: 8080
    virtual_hosts:
      - name: default
        domains: "*"
        routes:
          - match: { prefix: / }
            direct_response: { status: "200" }
`,
    issues: [
      '1:10 workers: must be an integer from 1 to 256 or "auto"',
      '2:8 admin: must be a mapping',
      '4:11 listeners[0].name: must be a string',
      '5:14 listeners[0].address: must be a string',
      '8:18 listeners[0].virtual_hosts[0].domains: must be a list',
      '11:40 listeners[0].virtual_hosts[0].routes[0].direct_response.status: must be an integer',
    ],
  },
  {
    name: 'workers 0',
    text: `workers: 0
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:10 workers: must be an integer from 1 to 256 or "auto"',
    ],
  },
  {
    name: 'workers 257',
    text: `workers: 257
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:10 workers: must be an integer from 1 to 256 or "auto"',
    ],
  },
  {
    name: 'workers 1.5',
    text: `workers: 1.5
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:10 workers: must be an integer from 1 to 256 or "auto"',
    ],
  },
  {
    name: 'bad protocol enum',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    protocol: htp
`,
    issues: [
      '4:15 listeners[0].protocol: must be one of: http, tcp (did you mean "http"?)',
    ],
  },
  {
    name: 'bad lb enum',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
clusters:
  - name: app
    lb: roundrobin
    endpoints: [127.0.0.1:3000]
`,
    issues: [
      '12:9 clusters[0].lb: must be one of: round_robin, random, least_request (did you mean "round_robin"?)',
    ],
  },
  {
    name: 'bad log level',
    text: `log: { level: verbose, access_log: "" }
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:15 log.level: must be one of: trace, debug, info, warn, error, fatal',
      '1:36 log.access_log: must not be empty',
    ],
  },
  {
    name: 'bad durations',
    text: `upgrade: { ready_timeout: 10 s, drain_timeout: -5 }
listeners:
  - name: web
    address: 127.0.0.1:8080
    timeouts: { idle: 5x, request_headers: 1.5 }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:27 upgrade.ready_timeout: must be a duration such as "250ms", "10s" or "2m"',
      '1:48 upgrade.drain_timeout: must be a duration such as "250ms", "10s" or "2m"',
      '5:23 listeners[0].timeouts.idle: must be a duration such as "250ms", "10s" or "2m"',
      '5:44 listeners[0].timeouts.request_headers: must be a duration such as "250ms", "10s" or "2m"',
    ],
  },
  {
    name: 'zero timeouts that must be positive',
    text: `upgrade: { ready_timeout: 0ms, drain_timeout: 0 }
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
clusters:
  - name: app
    endpoints: [127.0.0.1:3000]
    connect_timeout: 0s
`,
    issues: [
      '1:27 upgrade.ready_timeout: must be greater than 0',
      '1:47 upgrade.drain_timeout: must be greater than 0',
      '14:22 clusters[0].connect_timeout: must be greater than 0',
    ],
  },
  {
    name: 'duration beyond the timer limit',
    text: `upgrade: { drain_timeout: 1000h }
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:27 upgrade.drain_timeout: must be at most 2147483647ms (about 24.8 days)',
    ],
  },
  {
    name: 'listener address without port',
    text: `listeners:
  - name: web
    address: 0.0.0.0
    protocol: tcp
    cluster: app
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
`,
    issues: [
      '3:14 listeners[0].address: invalid address "0.0.0.0": missing port (expected host:port)',
    ],
  },
  {
    name: 'listener port out of range',
    text: `listeners:
  - name: web
    address: 0.0.0.0:70000
    protocol: tcp
    cluster: app
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
`,
    issues: [
      '3:14 listeners[0].address: invalid address "0.0.0.0:70000": port 70000 is out of range (0-65535)',
    ],
  },
  {
    name: 'garbage addresses',
    text: `admin: { address: "not an address!:80" }
listeners:
  - name: web
    address: "::1:8080"
    protocol: tcp
    cluster: app
  - name: db
    address: "[::g]:5432"
    protocol: tcp
    cluster: app
  - name: other
    address: 300.1.1.1:80
    protocol: tcp
    cluster: app
clusters: [{ name: app, endpoints: ["127.0.0.1:0", "localhost:http", ":80"] }]
`,
    issues: [
      '1:19 admin.address: invalid address "not an address!:80": "not an address!" is not a valid host name or IP address',
      '4:14 listeners[0].address: invalid address "::1:8080": IPv6 addresses must be in brackets, e.g. [::1]:8080',
      '8:14 listeners[1].address: invalid address "[::g]:5432": "::g" is not a valid IPv6 address',
      '12:14 listeners[2].address: invalid address "300.1.1.1:80": "300.1.1.1" is not a valid IPv4 address',
      '15:37 clusters[0].endpoints[0]: invalid address "127.0.0.1:0": port 0 is out of range (1-65535)',
      '15:52 clusters[0].endpoints[1]: invalid address "localhost:http": port "http" is not a number',
      '15:70 clusters[0].endpoints[2]: invalid address ":80": missing host (use 0.0.0.0 or [::] for every address)',
    ],
  },
  {
    name: 'duplicate listener name',
    text: `listeners:
  - name: db
    address: 127.0.0.1:5433
    protocol: tcp
    cluster: app
  - name: db
    address: 127.0.0.1:5434
    protocol: tcp
    cluster: app
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
`,
    issues: [
      '6:11 listeners[1].name: duplicate listener name "db" (first defined at line 2)',
    ],
  },
  {
    name: 'duplicate listener address',
    text: `listeners:
  - name: a
    address: "[::1]:5433"
    protocol: tcp
    cluster: app
  - name: b
    address: "[0:0::1]:5433"
    protocol: tcp
    cluster: app
  - name: c
    address: 127.0.0.1:9901
    protocol: tcp
    cluster: app
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
`,
    issues: [
      '7:14 listeners[1].address: address [::1]:5433 is already used by listener "a"',
      '11:14 listeners[2].address: address 127.0.0.1:9901 is already used by the admin endpoint',
    ],
  },
  {
    name: 'duplicate cluster',
    text: `listeners:
  - name: db
    address: 127.0.0.1:5433
    protocol: tcp
    cluster: app
clusters:
  - name: app
    endpoints: [127.0.0.1:3000]
  - name: app
    endpoints: [127.0.0.1:3001]
`,
    issues: [
      '9:11 clusters[1].name: duplicate cluster name "app" (first defined at line 7)',
    ],
  },
  {
    name: 'route to missing cluster',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /a }
            route: { cluster: ap }
          - match: { prefix: / }
            route: { cluster: backend }
clusters:
  - name: app
    endpoints: [127.0.0.1:3000]
`,
    issues: [
      '9:31 listeners[0].virtual_hosts[0].routes[0].route.cluster: cluster "ap" is not defined (did you mean "app"?)',
      '11:31 listeners[0].virtual_hosts[0].routes[1].route.cluster: cluster "backend" is not defined',
    ],
  },
  {
    name: 'route to a cluster when there are none',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: app }
`,
    issues: [
      '9:31 listeners[0].virtual_hosts[0].routes[0].route.cluster: cluster "app" is not defined (no clusters are defined)',
    ],
  },
  {
    name: 'tcp listener without cluster',
    text: `listeners:
  - name: db
    address: 127.0.0.1:5433
    protocol: tcp
`,
    issues: [
      '2:5 listeners[0]: missing required key "cluster" (a tcp listener proxies to one cluster)',
    ],
  },
  {
    name: 'tcp listener with missing cluster',
    text: `listeners:
  - name: db
    address: 127.0.0.1:5433
    protocol: tcp
    cluster: postgres
clusters:
  - name: pg
    endpoints: [127.0.0.1:5432]
`,
    issues: [
      '5:14 listeners[0].cluster: cluster "postgres" is not defined',
    ],
  },
  {
    name: 'virtual_hosts and request_headers on tcp',
    text: `listeners:
  - name: db
    address: 127.0.0.1:5433
    protocol: tcp
    cluster: pg
    timeouts: { request_headers: 5s }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
clusters:
  - name: pg
    endpoints: [127.0.0.1:5432]
`,
    issues: [
      '6:17 listeners[0].timeouts.request_headers: only allowed on http listeners',
      '7:5 listeners[0].virtual_hosts: only allowed on http listeners',
    ],
  },
  {
    name: 'cluster on http',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    cluster: pg
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
clusters:
  - name: pg
    endpoints: [127.0.0.1:5432]
`,
    issues: [
      '4:5 listeners[0].cluster: only allowed on tcp listeners; http listeners route to clusters through virtual_hosts',
    ],
  },
  {
    name: 'http listener without virtual_hosts',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    protocol: http
`,
    issues: [
      '2:5 listeners[0]: missing required key "virtual_hosts" (an http listener needs at least one)',
    ],
  },
  {
    name: 'route with two actions',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
            redirect: { path: /new }
`,
    issues: [
      '10:13 listeners[0].virtual_hosts[0].routes[0].redirect: cannot be combined with "direct_response": a route takes exactly one of route, direct_response, redirect',
    ],
  },
  {
    name: 'route with no action',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - name: nothing
            match: { prefix: / }
`,
    issues: [
      '8:13 listeners[0].virtual_hosts[0].routes[0]: missing one of: route, direct_response, redirect (a route takes exactly one)',
    ],
  },
  {
    name: 'route without match',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - direct_response: { status: 200 }
`,
    issues: [
      '8:13 listeners[0].virtual_hosts[0].routes[0]: missing required key "match"',
    ],
  },
  {
    name: 'match with two of prefix/path/regex',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match:
              prefix: /
              path: /index.html
              regex: "^/"
            direct_response: { status: 200 }
`,
    issues: [
      '10:15 listeners[0].virtual_hosts[0].routes[0].match.path: cannot be combined with "prefix": a match takes exactly one of prefix, path, regex',
      '11:15 listeners[0].virtual_hosts[0].routes[0].match.regex: cannot be combined with "prefix": a match takes exactly one of prefix, path, regex',
    ],
  },
  {
    name: 'match with none of prefix/path/regex',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { headers: [{ name: x-env }] }
            direct_response: { status: 200 }
`,
    issues: [
      '8:20 listeners[0].virtual_hosts[0].routes[0].match: missing one of: prefix, path, regex (a match takes exactly one)',
    ],
  },
  {
    name: 'prefix and path not starting with /',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: api }
            direct_response: { status: 200 }
          - match: { path: index.html }
            route: { cluster: app, prefix_rewrite: v2/ }
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
`,
    issues: [
      '8:30 listeners[0].virtual_hosts[0].routes[0].match.prefix: must start with "/"',
      '10:28 listeners[0].virtual_hosts[0].routes[1].match.path: must start with "/"',
      '11:52 listeners[0].virtual_hosts[0].routes[1].route.prefix_rewrite: must start with "/"',
    ],
  },
  {
    name: 'invalid regex',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { regex: "^/(a|b" }
            direct_response: { status: 200 }
`,
    issues: [
      '8:29 listeners[0].virtual_hosts[0].routes[0].match.regex: invalid regular expression: Unterminated group',
    ],
  },
  {
    name: 'header matcher with exact and regex',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match:
              prefix: /
              headers:
                - name: x-env
                  exact: prod
                  regex: "[unclosed"
                - { name: "bad header", present: yes }
            direct_response: { status: 200 }
`,
    issues: [
      '13:19 listeners[0].virtual_hosts[0].routes[0].match.headers[0].regex: cannot be combined with "exact": a header matcher takes at most one of exact, regex, present',
      '13:26 listeners[0].virtual_hosts[0].routes[0].match.headers[0].regex: invalid regular expression: Unterminated character class',
      '14:27 listeners[0].virtual_hosts[0].routes[0].match.headers[1].name: must be a valid HTTP header name',
      '14:50 listeners[0].virtual_hosts[0].routes[0].match.headers[1].present: must be true or false',
    ],
  },
  {
    name: 'direct_response status 99 and 700',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /a }
            direct_response: { status: 99 }
          - match: { prefix: / }
            direct_response: { status: 700, body: nope }
`,
    issues: [
      '9:40 listeners[0].virtual_hosts[0].routes[0].direct_response.status: must be at least 200',
      '11:40 listeners[0].virtual_hosts[0].routes[1].direct_response.status: must be at most 599',
    ],
  },
  {
    name: 'redirect status 200',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            redirect: { status: 200, scheme: ftp }
`,
    issues: [
      '9:33 listeners[0].virtual_hosts[0].routes[0].redirect.status: must be one of: 301, 302, 303, 307, 308',
      '9:46 listeners[0].virtual_hosts[0].routes[0].redirect.scheme: must be one of: http, https',
    ],
  },
  {
    name: 'redirect with path and prefix_rewrite, prefix_rewrite on a regex match',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /old }
            redirect: { path: /new, prefix_rewrite: /new }
          - match: { regex: "^/v1" }
            route: { cluster: app, prefix_rewrite: /v2 }
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
`,
    issues: [
      '9:37 listeners[0].virtual_hosts[0].routes[0].redirect.prefix_rewrite: cannot be combined with "path": a redirect takes at most one of path, prefix_rewrite',
      '11:36 listeners[0].virtual_hosts[0].routes[1].route.prefix_rewrite: needs a prefix or path match, not a regex',
    ],
  },
  {
    name: 'empty endpoints and missing endpoints',
    text: `listeners:
  - name: db
    address: 127.0.0.1:5433
    protocol: tcp
    cluster: a
clusters:
  - name: a
    endpoints: []
  - name: b
    max_connections_per_endpoint: 0
`,
    issues: [
      '8:16 clusters[0].endpoints: must not be empty',
      '9:5 clusters[1]: missing required key "endpoints"',
      '10:35 clusters[1].max_connections_per_endpoint: must be at least 1',
    ],
  },
  {
    name: 'duplicate domain within a listener',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: a
        domains: [example.com, "*.example.com", Example.COM]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
      - name: b
        domains: ["*.EXAMPLE.com", "*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
  - name: web2
    address: 127.0.0.1:8081
    virtual_hosts:
      - name: a
        domains: [example.com]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '6:49 listeners[0].virtual_hosts[0].domains[2]: duplicate domain "example.com" in this virtual host',
      '11:19 listeners[0].virtual_hosts[1].domains[0]: domain "*.example.com" is already served by virtual host "a" of this listener',
    ],
  },
  {
    name: 'bad domains',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: a
        domains: ["foo.*", "exa mple.com", "example.com:8080"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '6:19 listeners[0].virtual_hosts[0].domains[0]: must be "*", "*.example.com" or a host name (without a port)',
      '6:28 listeners[0].virtual_hosts[0].domains[1]: must be "*", "*.example.com" or a host name (without a port)',
      '6:44 listeners[0].virtual_hosts[0].domains[2]: must be "*", "*.example.com" or a host name (without a port)',
    ],
  },
  {
    name: 'duplicate vhost name',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: site
        domains: [a.example.com]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
      - name: site
        domains: [b.example.com]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '10:15 listeners[0].virtual_hosts[1].name: duplicate virtual host name "site" (first defined at line 5)',
    ],
  },
  {
    name: 'duplicate route name',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: site
        domains: ["*"]
        routes:
          - name: r
            match: { prefix: /a }
            direct_response: { status: 200 }
          - name: r
            match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '11:19 listeners[0].virtual_hosts[0].routes[1].name: duplicate route name "r" (first defined at line 8)',
    ],
  },
  {
    name: 'bad names',
    text: `listeners:
  - name: "web server"
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: "a/b"
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '2:11 listeners[0].name: must contain only letters, digits, "_", "." and "-"',
      '5:15 listeners[0].virtual_hosts[0].name: must contain only letters, digits, "_", "." and "-"',
    ],
  },
  {
    name: 'empty values',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
`,
    issues: [
      '7:9 listeners[0].virtual_hosts[0].routes: must be a list (the value is empty)',
    ],
  },
  {
    name: 'multiple errors are all reported, sorted by position',
    text: `listeners:
  - name: web
    address: 127.0.0.1:80800
    protocol: http
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: missing, timeout: soon }
workers: none
clusters:
  - name: app
    endpoints: [localhost]
    lb: fastest
bogus: true
`,
    issues: [
      '3:14 listeners[0].address: invalid address "127.0.0.1:80800": port 80800 is out of range (0-65535)',
      '10:31 listeners[0].virtual_hosts[0].routes[0].route.cluster: cluster "missing" is not defined',
      '10:49 listeners[0].virtual_hosts[0].routes[0].route.timeout: must be a duration such as "250ms", "10s" or "2m"',
      '11:10 workers: must be an integer from 1 to 256 or "auto"',
      '14:17 clusters[0].endpoints[0]: invalid address "localhost": missing port (expected host:port)',
      '15:9 clusters[0].lb: must be one of: round_robin, random, least_request',
      '16:1 bogus: unknown key "bogus"',
    ],
  },
  {
    name: 'empty strings',
    text: `admin: { address: "" }
listeners:
  - name: ""
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: [""]
        routes:
          - match: { prefix: "", regex: "" }
            direct_response: { status: 200, content_type: "" }
`,
    issues: [
      '1:19 admin.address: must not be empty',
      '3:11 listeners[0].name: must not be empty',
      '7:19 listeners[0].virtual_hosts[0].domains[0]: must not be empty',
      '9:30 listeners[0].virtual_hosts[0].routes[0].match.prefix: must not be empty',
      '9:34 listeners[0].virtual_hosts[0].routes[0].match.regex: cannot be combined with "prefix": a match takes exactly one of prefix, path, regex',
      '9:41 listeners[0].virtual_hosts[0].routes[0].match.regex: must not be empty',
      '10:59 listeners[0].virtual_hosts[0].routes[0].direct_response.content_type: must not be empty',
    ],
  },
  {
    name: 'absurdly long duration',
    text: `upgrade: { drain_timeout: 99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999h }
listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
`,
    issues: [
      '1:27 upgrade.drain_timeout: must be at most 2147483647ms (about 24.8 days)',
    ],
  },
  {
    name: 'route timeout beyond the timer limit, listener idle as a huge integer',
    text: `listeners:
  - name: web
    address: 127.0.0.1:8080
    timeouts: { idle: 100000000000 }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: app, timeout: 600h }
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
`,
    issues: [
      '4:23 listeners[0].timeouts.idle: must be at most 2147483647ms (about 24.8 days)',
      '10:45 listeners[0].virtual_hosts[0].routes[0].route.timeout: must be at most 2147483647ms (about 24.8 days)',
    ],
  },
];

for (const c of cases) {
  void t.test(c.name, async (t) => {
    t.strictSame(issuesOf(c.text), c.issues.map((i) => `${FILE}:${i}`));
  });
}

void t.test('issues are sorted by line, then column', async (t) => {
  const positions = cases.flatMap((c) => {
    const numbers = c.issues.map((i) => i.split(' ')[0]!.split(':').map(Number) as [number, number]);
    return numbers.slice(1).map((p, k) => [numbers[k]!, p] as const);
  });
  for (const [a, b] of positions) t.ok(a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]), `${a.join(':')} before ${b.join(':')}`);
});

void t.test('a document that is only a marker or a null is empty', async (t) => {
  for (const text of ['---\n', '~\n', 'null\n', '--- # nothing\n...\n']) {
    t.strictSame(issuesOf(text), [`${FILE}:1:1 (root): config is empty`], JSON.stringify(text));
  }
});

void t.test('a byte-order mark and CRLF line ends do not shift positions', async (t) => {
  t.strictSame(issuesOf('\uFEFFworkers: 0\r\nlisteners:\r\n  - name: web\r\n    adress: x\r\n'), [
    `${FILE}:1:10 workers: must be an integer from 1 to 256 or "auto"`,
    `${FILE}:3:5 listeners[0]: missing required key "virtual_hosts" (an http listener needs at least one)`,
    `${FILE}:4:5 listeners[0].adress: unknown key "adress" (did you mean "address"?)`,
  ]);
});

void t.test('control socket path longer than a Unix socket allows', async (t) => {
  const socket = `/run/mosn/${'x'.repeat(100)}.sock`;
  const text = `control_socket: ${socket}
listeners:
  - { name: db, address: 127.0.0.1:5433, protocol: tcp, cluster: pg }
clusters: [{ name: pg, endpoints: [127.0.0.1:5432] }]
`;
  t.strictSame(issuesOf(text), [
    `${FILE}:1:17 control_socket: socket path "${socket}" is 115 bytes long; Unix sockets allow at most 107`,
  ]);
});

void t.test('a relative control socket path is measured once resolved', async (t) => {
  const text = `control_socket: ${'y'.repeat(60)}.sock
listeners:
  - { name: db, address: 127.0.0.1:5433, protocol: tcp, cluster: pg }
clusters: [{ name: pg, endpoints: [127.0.0.1:5432] }]
`;
  const [issue] = issuesOf(text, `/srv/${'d'.repeat(50)}/mosn.yaml`);
  t.match(issue, /control_socket: socket path "\/srv\/d+\/y+\.sock" is 121 bytes long/);
});

void t.test('JSON input: positions point into the JSON text', async (t) => {
  const file = fixture('bad.json');
  const lines = (await readFile(file, 'utf8')).split('\n');
  const col = (line: number, needle: string): number => lines[line - 1]!.indexOf(needle) + 1;
  await t.rejects(loadConfig(file), ConfigError);
  const error = await loadConfig(file).catch((e: unknown) => e);
  t.ok(error instanceof ConfigError);
  t.strictSame((error as ConfigError).issues.map(formatIssue), [
    `${file}:6:${col(6, '"0.0.0.0:80800"')} listeners[0].address: invalid address "0.0.0.0:80800": port 80800 is out of range (0-65535)`,
    `${file}:12:${col(12, '"app"')} listeners[0].virtual_hosts[0].routes[0].route.cluster: cluster "app" is not defined (did you mean "ap"?)`,
    `${file}:12:${col(12, '"timout"')} listeners[0].virtual_hosts[0].routes[0].route.timout: unknown key "timout" (did you mean "timeout"?)`,
  ]);
});

void t.test('JSON syntax error', async (t) => {
  const file = fixture('bad-syntax.json');
  const error = await loadConfig(file).catch((e: unknown) => e);
  t.ok(error instanceof ConfigError);
  t.strictSame((error as ConfigError).issues.map(formatIssue), [`${file}:5:1 (root): invalid YAML: Flow map must end with a }`]);
});

void t.test('ConfigError carries the issues and lists them in its message', async (t) => {
  const error = t.throws(() => parseConfig('workers: 0\nlisteners: []\n', FILE), ConfigError);
  t.ok(error instanceof ConfigError);
  const { code, issues, message } = error as ConfigError;
  t.equal(code, 'MOSN_ERR_CONFIG_INVALID');
  t.strictSame(issues, [
    { file: FILE, line: 1, col: 10, path: 'workers', message: 'must be an integer from 1 to 256 or "auto"' },
    { file: FILE, line: 2, col: 12, path: 'listeners', message: 'must not be empty' },
  ]);
  t.equal(message, `${FILE}:1:10 workers: must be an integer from 1 to 256 or "auto"\n${FILE}:2:12 listeners: must not be empty`);
});

void t.test('an excessive alias count is reported, not thrown raw', async (t) => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  const [issue] = issuesOf(`${lines.join('\n')}\n`);
  t.match(issue, /^\/etc\/mosn\/mosn\.yaml:1:1 \(root\): invalid YAML: /);
});

void t.test('unreadable file', async (t) => {
  const missing = fixture('does-not-exist.yaml');
  await t.rejects(loadConfig(missing), {
    name: 'MosnError',
    code: 'MOSN_ERR_CONFIG_READ',
    message: `cannot read config ${missing}: ENOENT: no such file or directory, open '${missing}'`,
  });
});
