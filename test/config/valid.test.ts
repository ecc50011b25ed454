// Valid configs: what parseConfig / loadConfig return for them.

import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig, parseConfig, type Config } from '../../src/config/index.js';

const FILE = '/etc/mosn/mosn.yaml';
const fixture = (name: string): string => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

const MINIMAL = `listeners:
  - name: web
    address: 127.0.0.1:8080
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: app }
clusters:
  - name: app
    endpoints: [127.0.0.1:3000]
`;

/** Every object reachable from `value`, with its path, for freeze checks. */
function objects(value: unknown, at = 'config'): [string, object][] {
  if (typeof value !== 'object' || value === null) return [];
  return [[at, value], ...Object.entries(value).flatMap(([k, v]) => objects(v, `${at}.${k}`))];
}

void t.test('full example normalises every field', async (t) => {
  const file = fixture('full.yaml');
  const dir = path.dirname(file);
  const config = await loadConfig(file);
  const expected: Config = {
    source: file,
    workers: 4,
    control_socket: path.join(dir, 'run/mosn.sock'),
    admin: { address: { host: '127.0.0.1', port: 9901, text: '127.0.0.1:9901' } },
    upgrade: { ready_timeout: 5_000, drain_timeout: 90_000, max_draining_generations: 3 },
    log: { level: 'debug', access_log: path.join(dir, 'logs/access.log') },
    listeners: [
      {
        name: 'web',
        address: { host: '0.0.0.0', port: 8080, text: '0.0.0.0:8080' },
        protocol: 'http',
        timeouts: { idle: 120_000, request_headers: 1_500 },
        virtual_hosts: [
          {
            name: 'api',
            domains: ['api.example.com', '*.api.example.com'],
            routes: [
              {
                name: 'v1',
                match: {
                  prefix: '/v1/',
                  headers: [
                    { name: 'x-env', exact: 'prod', invert: false },
                    { name: 'x-debug', present: false, invert: false },
                    { name: 'x-trace', regex: '^[0-9a-f]+$', invert: true },
                    { name: 'x-canary', present: true, invert: false },
                  ],
                },
                route: { cluster: 'app', timeout: 0, prefix_rewrite: '/', host_rewrite: 'internal.example.com' },
              },
              {
                name: 'api/1',
                match: { regex: '^/health(z)?$', headers: [] },
                direct_response: { status: 200, body: 'ok\n', content_type: 'text/plain; charset=utf-8' },
              },
            ],
          },
          {
            name: 'default',
            domains: ['*'],
            routes: [
              {
                name: 'default/0',
                match: { path: '/old', headers: [] },
                redirect: { status: 301, scheme: 'https', host: 'example.com', path: '/new', strip_query: false },
              },
              { name: 'default/1', match: { prefix: '/', headers: [] }, route: { cluster: 'app', timeout: 15_000 } },
            ],
          },
        ],
      },
      {
        name: 'db',
        address: { host: '::1', port: 5433, text: '[::1]:5433' },
        protocol: 'tcp',
        cluster: 'pg',
        timeouts: { idle: 3_600_000, request_headers: 30_000 },
        virtual_hosts: [],
      },
      {
        name: 'ephemeral-a',
        address: { host: '127.0.0.1', port: 0, text: '127.0.0.1:0' },
        protocol: 'tcp',
        cluster: 'pg',
        timeouts: { idle: 60_000, request_headers: 30_000 },
        virtual_hosts: [],
      },
      {
        name: 'ephemeral-b',
        address: { host: '127.0.0.1', port: 0, text: '127.0.0.1:0' },
        protocol: 'tcp',
        cluster: 'pg',
        timeouts: { idle: 60_000, request_headers: 30_000 },
        virtual_hosts: [],
      },
    ],
    clusters: [
      {
        name: 'app',
        lb: 'least_request',
        endpoints: [
          { host: '127.0.0.1', port: 3001, text: '127.0.0.1:3001' },
          { host: '::1', port: 3002, text: '[::1]:3002' },
          { host: 'localhost', port: 3003, text: 'localhost:3003' },
        ],
        connect_timeout: 250,
        idle_timeout: 30_000,
        headers_timeout: 10_000,
        max_connections_per_endpoint: 16,
      },
      {
        name: 'pg',
        lb: 'round_robin',
        endpoints: [{ host: '::1', port: 5432, text: '[::1]:5432' }],
        connect_timeout: 5_000,
        idle_timeout: 60_000,
        headers_timeout: 30_000,
        max_connections_per_endpoint: 128,
      },
    ],
  };
  t.strictSame(config, expected);
});

void t.test('the result is deeply frozen', async (t) => {
  const config = await loadConfig(fixture('full.yaml'));
  for (const [at, o] of objects(config)) t.ok(Object.isFrozen(o), `${at} is frozen`);
  t.throws(() => {
    (config.listeners[0] as { name: string }).name = 'changed';
  }, TypeError);
  t.throws(() => {
    (config.clusters as Config['clusters'][number][]).push(config.clusters[0]!);
  }, TypeError);
});

void t.test('the JSON equivalent gives the same config', async (t) => {
  const fromYaml = await loadConfig(fixture('full.yaml'));
  const fromJson = await loadConfig(fixture('full.json'));
  t.strictSame({ ...fromJson, source: '' }, { ...fromYaml, source: '' });
  t.equal(fromJson.source, fixture('full.json'));
});

void t.test('defaults fill a minimal config', async (t) => {
  const config = parseConfig(MINIMAL, FILE);
  t.equal(config.source, FILE);
  t.equal(config.workers, os.availableParallelism());
  t.equal(config.control_socket, '/run/mosn/mosn.sock');
  t.strictSame(config.admin, { address: { host: '127.0.0.1', port: 9901, text: '127.0.0.1:9901' } });
  t.strictSame(config.upgrade, { ready_timeout: 10_000, drain_timeout: 30_000, max_draining_generations: 2 });
  t.strictSame(config.log, { level: 'info', access_log: 'stdout' });
  const [listener] = config.listeners;
  t.equal(listener?.protocol, 'http');
  t.notOk(listener && 'cluster' in listener, 'no cluster key on an http listener');
  t.strictSame(listener?.timeouts, { idle: 60_000, request_headers: 30_000 });
  t.strictSame(listener?.virtual_hosts[0]?.routes[0], {
    name: 'default/0',
    match: { prefix: '/', headers: [] },
    route: { cluster: 'app', timeout: 15_000 },
  });
  t.strictSame(config.clusters[0], {
    name: 'app',
    lb: 'round_robin',
    endpoints: [{ host: '127.0.0.1', port: 3000, text: '127.0.0.1:3000' }],
    connect_timeout: 5_000,
    idle_timeout: 60_000,
    headers_timeout: 30_000,
    max_connections_per_endpoint: 128,
  });
});

void t.test('workers: "auto" is the CPU count; a number is taken as is', async (t) => {
  t.equal(parseConfig(`workers: auto\n${MINIMAL}`, FILE).workers, os.availableParallelism());
  t.equal(parseConfig(`workers: 1\n${MINIMAL}`, FILE).workers, 1);
  t.equal(parseConfig(`workers: 256\n${MINIMAL}`, FILE).workers, 256);
});

void t.test('clusters may be absent when nothing refers to one', async (t) => {
  const text = `listeners:
  - name: web
    address: "[::]:0"
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 404, body: "not here\\n" }
`;
  const config = parseConfig(text, FILE);
  t.strictSame(config.clusters, []);
  t.strictSame(config.listeners[0]?.address, { host: '::', port: 0, text: '[::]:0' });
});

void t.test('durations', async (t) => {
  const timeouts = (value: string): number | undefined =>
    parseConfig(`upgrade: { drain_timeout: ${value} }\n${MINIMAL}`, FILE).upgrade.drain_timeout;
  t.equal(timeouts('250ms'), 250);
  t.equal(timeouts('10s'), 10_000);
  t.equal(timeouts('2m'), 120_000);
  t.equal(timeouts('1h'), 3_600_000);
  t.equal(timeouts('1.5s'), 1_500);
  t.equal(timeouts('1m30s'), 90_000);
  t.equal(timeouts('1500'), 1_500, 'a bare integer is milliseconds');
  t.throws(() => timeouts('"1500"'), { message: /must be a duration/ }, 'a string needs a unit');
});

void t.test('relative paths resolve against the config file, absolute ones and keywords stay', async (t) => {
  const file = '/srv/mosn/conf/mosn.yaml';
  const relative = parseConfig(`control_socket: ../run/mosn.sock\nlog: { access_log: access.log }\n${MINIMAL}`, file);
  t.equal(relative.control_socket, '/srv/mosn/run/mosn.sock');
  t.equal(relative.log.access_log, '/srv/mosn/conf/access.log');
  const absolute = parseConfig(`control_socket: /tmp/m.sock\nlog: { access_log: /var/log/mosn.log }\n${MINIMAL}`, file);
  t.equal(absolute.control_socket, '/tmp/m.sock');
  t.equal(absolute.log.access_log, '/var/log/mosn.log');
  t.equal(parseConfig(`log: { access_log: "off" }\n${MINIMAL}`, file).log.access_log, 'off');
});

void t.test('loadConfig resolves a relative file name', async (t) => {
  const relative = path.relative(process.cwd(), fixture('full.yaml'));
  const config = await loadConfig(relative);
  t.equal(config.source, fixture('full.yaml'));
});

void t.test('anchors and merge keys', async (t) => {
  const text = `listeners:
  - name: db
    address: 127.0.0.1:5433
    protocol: tcp
    cluster: a
clusters:
  - &base
    name: a
    endpoints: [127.0.0.1:3000]
    connect_timeout: 1s
    lb: random
  - <<: *base
    name: b
`;
  const config = parseConfig(text, FILE);
  t.strictSame(
    config.clusters.map((c) => [c.name, c.lb, c.connect_timeout, c.endpoints[0]?.text]),
    [
      ['a', 'random', 1_000, '127.0.0.1:3000'],
      ['b', 'random', 1_000, '127.0.0.1:3000'],
    ],
  );
});

void t.test('examples/*.yaml all validate', async (t) => {
  const names = (await readdir(EXAMPLES).catch(() => [])).filter((n) => /\.ya?ml$/.test(n));
  if (names.length === 0) {
    t.pass('no examples yet');
    return;
  }
  for (const name of names) {
    const config = await loadConfig(path.join(EXAMPLES, name));
    t.ok(config.listeners.length > 0, `${name} is valid`);
  }
});
