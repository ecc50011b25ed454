// mosnctl: status (text and --json), finding the socket (--socket, -c FILE,
// $MOSN_CONTROL_SOCKET), no supervisor, usage errors.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import YAML from 'yaml';
import { tcpBackend, tcpEcho } from '../helpers/backends.js';
import { MOSNCTL, startMosn, tempDir, writeConfig, type Status } from '../helpers/mosn.js';

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function mosnctl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await execa(process.execPath, [MOSNCTL, ...args], { reject: false, timeout: 20_000, env, extendEnv: true });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

void t.test('mosnctl against a running supervisor', async (t) => {
  const pg = await tcpBackend(tcpEcho);
  t.teardown(() => pg.close());
  const m = await startMosn({
    workers: 2,
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'ok' } }] }],
      },
      { name: 'db', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'pg' },
    ],
    clusters: [{ name: 'pg', endpoints: [pg.address] }],
  });
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  t.equal(pids.length, 2);

  await t.test('status: human text with pids, phase and listener names', async (t) => {
    const r = await mosnctl(['--socket', m.socket, 'status']);
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stdout, new RegExp(`pid ${m.pid}\\b.*phase running`));
    for (const l of m.status.listeners) {
      t.match(r.stdout, new RegExp(`^ {2}${l.name}\\s+${l.protocol}\\s+127\\.0\\.0\\.1:${l.port}$`, 'm'), `listener ${l.name}`);
    }
    for (const pid of pids) t.match(r.stdout, new RegExp(`worker \\d+ +pid ${pid}\\b.*serving`), `worker ${pid}`);
    t.match(r.stdout, /^generation 1 \(current\)$/m);
    t.match(r.stdout, new RegExp(`^config +${m.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    t.equal(r.stderr, '');
  });

  await t.test('status --json parses and matches', async (t) => {
    const r = await mosnctl(['--socket', m.socket, 'status', '--json']);
    t.equal(r.exitCode, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Status;
    t.equal(s.pid, m.pid);
    t.equal(s.phase, 'running');
    t.same(
      s.listeners.map((l) => l.name),
      ['web', 'db'],
    );
    t.same(s.generations.flatMap((g) => g.workers.map((w) => w.pid)).sort(), [...pids].sort());
    t.equal(s['control_socket'], m.socket);
    t.equal(s['config_file'], m.configFile);
  });

  await t.test('-c FILE finds the socket from the config', async (t) => {
    const r = await mosnctl(['-c', m.configFile, 'status', '--json']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal((JSON.parse(r.stdout) as Status).pid, m.pid);
    const long = await mosnctl(['--config', m.configFile, 'status', '--json']);
    t.equal(long.exitCode, 0, long.stderr);
  });

  await t.test('-c FILE still works while the file has unrelated mistakes (mid-edit)', async (t) => {
    const cfg = YAML.parse(fs.readFileSync(m.configFile, 'utf8')) as Record<string, unknown>;
    const dir = tempDir();
    const file = writeConfig({ ...cfg, workers: 'lots', bogus: true }, dir, 'editing.yaml');
    const r = await mosnctl(['-c', file, 'status', '--json']);
    t.equal(r.exitCode, 0, r.stderr);
    t.equal((JSON.parse(r.stdout) as Status).pid, m.pid);
  });

  await t.test('-c FILE with a relative control_socket resolves it against the file', async (t) => {
    const rel = path.relative(path.dirname(m.configFile), m.socket);
    t.notOk(path.isAbsolute(rel));
    const file = path.join(path.dirname(m.configFile), 'relative.yaml');
    fs.writeFileSync(file, `control_socket: ${rel}\nlisteners: []\n`);
    const r = await execa(process.execPath, [MOSNCTL, '-c', file, 'status', '--json'], { reject: false, cwd: '/' });
    t.equal(r.exitCode, 0, String(r.stderr));
  });

  await t.test('$MOSN_CONTROL_SOCKET', async (t) => {
    const r = await mosnctl(['status', '--json'], { MOSN_CONTROL_SOCKET: m.socket });
    t.equal(r.exitCode, 0, r.stderr);
    t.equal((JSON.parse(r.stdout) as Status).pid, m.pid);
  });
});

void t.test('no supervisor: exit 1, "no mosn supervisor is running" on stderr', async (t) => {
  const dir = tempDir();
  const missing = path.join(dir, 'missing.sock');
  const r = await mosnctl(['--socket', missing, 'status']);
  t.equal(r.exitCode, 1);
  t.match(r.stderr, `no mosn supervisor is running on ${missing}`);
  t.match(r.stderr, /\[MOSN_ERR_CONTROL_UNAVAILABLE\]/);
  t.equal(r.stdout, '');

  // A socket file left behind with nobody listening (ECONNREFUSED): a
  // process that listened on it was SIGKILLed, so nobody unlinked it.
  const stale = path.join(dir, 'stale.sock');
  const child = execa(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], {
    reject: false,
  });
  await new Promise<void>((res) => child.stdout?.once('data', () => res()));
  child.kill('SIGKILL');
  await child;
  t.ok(fs.statSync(stale).isSocket(), 'a stale socket file exists');
  const r2 = await mosnctl(['--socket', stale, 'status']);
  t.equal(r2.exitCode, 1);
  t.match(r2.stderr, `no mosn supervisor is running on ${stale} (ECONNREFUSED)`);

  // Through -c FILE as well.
  const file = path.join(dir, 'mosn.yaml');
  fs.writeFileSync(file, `control_socket: ${missing}\nlisteners: []\n`);
  const r3 = await mosnctl(['-c', file, 'stop']);
  t.equal(r3.exitCode, 1);
  t.match(r3.stderr, 'no mosn supervisor is running');
});

void t.test('-c with an unreadable file: exit 1, MOSN_ERR_CONFIG_READ', async (t) => {
  const r = await mosnctl(['-c', path.join(tempDir(), 'nope.yaml'), 'status']);
  t.equal(r.exitCode, 1);
  t.match(r.stderr, /cannot read config .*nope\.yaml.*\[MOSN_ERR_CONFIG_READ\]/);
});

void t.test('usage errors: exit 2 with usage', async (t) => {
  for (const args of [['frobnicate'], [], ['--socket'], ['--socket', '/x.sock', 'explode']]) {
    const r = await mosnctl(args);
    t.equal(r.exitCode, 2, `mosnctl ${args.join(' ')}: exit 2`);
    t.match(r.stderr, /^usage: mosnctl \[--socket PATH \| -c FILE\] COMMAND \[--json\]$/m, 'usage on stderr');
    t.equal(r.stdout, '');
  }
  const unknown = await mosnctl(['frobnicate']);
  t.match(unknown.stderr, /^mosnctl: unknown command "frobnicate"$/m);
  const help = await mosnctl(['--help']);
  t.equal(help.exitCode, 0);
  t.match(help.stdout, /commands:\n {2}status/);
});
