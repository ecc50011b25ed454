// The `mosn` CLI: version, validate, start failures (bad config, port taken,
// unreadable file), usage errors.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { MOSN, ROOT, tempDir, testConfig, writeConfig } from '../helpers/mosn.js';

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function mosn(...args: string[]): Promise<Run> {
  // A start that should fail but serves instead is cut (and fails) at 15 s.
  const r = await execa(process.execPath, [MOSN, ...args], { reject: false, timeout: 15_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const GOOD = (dir: string, address = '127.0.0.1:0'): Record<string, unknown> =>
  testConfig(
    {
      workers: 1,
      listeners: [
        {
          name: 'web',
          address,
          virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
        },
      ],
      clusters: [{ name: 'app', endpoints: ['127.0.0.1:3000'] }],
    },
    dir,
  );

// Four problems, each on a known line and column.
const BAD = (dir: string): string => `workers: 1
control_socket: ${path.join(dir, 'mosn.sock')}
bogus_key: 1
listeners:
  - name: web
    address: 127.0.0.1:99999
    virtual_hosts:
      - name: vh
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: nope }
clusters:
  - name: app
    endpoints: [127.0.0.1:3000]
    lb: fastest
`;

function expectedIssues(file: string): string[] {
  return [
    `${file}:3:1 bogus_key: unknown key "bogus_key"`,
    `${file}:6:14 listeners[0].address: invalid address "127.0.0.1:99999": port 99999 is out of range (0-65535)`,
    `${file}:12:31 listeners[0].virtual_hosts[0].routes[0].route.cluster: cluster "nope" is not defined`,
    `${file}:16:9 clusters[0].lb: must be one of: round_robin, random, least_request`,
  ];
}

/** Lines shaped FILE:LINE:COL path: message. */
function issueLines(text: string, file: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${file}:`));
}

void t.test('mosn version prints the package version', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await mosn('version');
  t.equal(r.exitCode, 0);
  t.equal(r.stdout, `mosn-ts ${pkg.version} (node ${process.version})`);
});

void t.test('mosn validate', async (t) => {
  const dir = tempDir();
  await t.test('a good config: exit 0', async (t) => {
    const file = writeConfig(GOOD(dir), dir, 'good.yaml');
    const r = await mosn('validate', '-c', file);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal(r.stdout, `${file}: ok`);
    t.equal(r.stderr, '');
  });
  await t.test('a bad config: exit 1, every error as FILE:LINE:COL path: message', async (t) => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, BAD(dir));
    const r = await mosn('validate', '-c', file);
    t.equal(r.exitCode, 1);
    t.same(issueLines(r.stderr, file), expectedIssues(file), 'all four, in file order');
    t.match(r.stderr, /4 errors in .*bad\.yaml \[MOSN_ERR_CONFIG_INVALID\]/);
    t.equal(r.stdout, '');
  });
  await t.test('a relative -c is reported with its absolute path', async (t) => {
    const file = path.join(dir, 'bad2.yaml');
    fs.writeFileSync(file, BAD(dir));
    const r = await execa(process.execPath, [MOSN, 'validate', '-c', 'bad2.yaml'], { reject: false, cwd: dir });
    t.equal(r.exitCode, 1);
    t.equal(issueLines(String(r.stderr), file).length, 4);
  });
  await t.test('a missing file: exit 1, MOSN_ERR_CONFIG_READ', async (t) => {
    const r = await mosn('validate', '-c', path.join(dir, 'nope.yaml'));
    t.equal(r.exitCode, 1);
    t.match(r.stderr, /cannot read config .*nope\.yaml.*ENOENT.*\[MOSN_ERR_CONFIG_READ\]/);
  });
  await t.test('no -c: usage, exit 2', async (t) => {
    const r = await mosn('validate');
    t.equal(r.exitCode, 2);
    t.match(r.stderr, /validate needs -c FILE/);
    t.match(r.stderr, /usage:/);
  });
});

void t.test('mosn start with an invalid config: exit 1, the errors printed, nothing left behind', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'bad.yaml');
  fs.writeFileSync(file, BAD(dir));
  const r = await mosn('start', '-c', file);
  t.equal(r.exitCode, 1);
  t.same(issueLines(r.stderr, file), expectedIssues(file));
  t.match(r.stderr, /MOSN_ERR_CONFIG_INVALID/);
  t.notOk(fs.existsSync(path.join(dir, 'mosn.sock')), 'no control socket');
  t.notOk(fs.existsSync(path.join(dir, 'mosn.sock.lock')), 'no lock');
});

void t.test('mosn start with a port already taken: exit 1, MOSN_ERR_LISTEN naming the listener', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const dir = tempDir();
  const file = writeConfig(GOOD(dir, `127.0.0.1:${port}`), dir);
  const r = await mosn('start', '-c', file);
  t.equal(r.exitCode, 1);
  t.match(r.stderr, new RegExp(`^mosn: listener "web": cannot bind 127\\.0\\.0\\.1:${port}: EADDRINUSE \\(address already in use\\) \\[MOSN_ERR_LISTEN\\]$`, 'm'));
  const fatal = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l['level'] === 'fatal');
  t.equal(fatal?.['code'], 'MOSN_ERR_LISTEN', 'the log says it too, with the code');
  t.notOk(fs.existsSync(path.join(dir, 'mosn.sock')), 'no control socket left');
  t.notOk(fs.existsSync(path.join(dir, 'mosn.sock.lock')), 'lock released');
});

void t.test('mosn start with the admin port taken: exit 1, MOSN_ERR_LISTEN naming admin', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const dir = tempDir();
  const file = writeConfig({ ...GOOD(dir), admin: { address: `127.0.0.1:${port}` } }, dir);
  const r = await mosn('start', '-c', file);
  t.equal(r.exitCode, 1);
  t.match(r.stderr, new RegExp(`admin: cannot bind 127\\.0\\.0\\.1:${port}.*\\[MOSN_ERR_LISTEN\\]`));
  t.notOk(fs.existsSync(path.join(dir, 'mosn.sock')), 'control socket removed');
  t.notOk(fs.existsSync(path.join(dir, 'mosn.sock.lock')), 'lock released');
});

void t.test('mosn usage errors exit 2 with usage', async (t) => {
  for (const args of [[], ['frobnicate'], ['start'], ['start', '-c']]) {
    const r = await mosn(...args);
    t.equal(r.exitCode, 2, `mosn ${args.join(' ')}: exit 2`);
    t.match(r.stderr, /usage:\n {2}mosn start -c FILE/, 'prints usage');
  }
  const help = await mosn('--help');
  t.equal(help.exitCode, 0);
  t.match(help.stdout, /mosn validate -c FILE/);
});
