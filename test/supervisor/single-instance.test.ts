// One supervisor per control socket: a second `mosn start` fails clearly and
// leaves the first alone; a crashed supervisor's lock goes stale and a new
// one takes over; a control socket directory that does not exist is created.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { get } from '../helpers/clients.js';
import { MOSN, startMosn, tempDir, testConfig, writeConfig } from '../helpers/mosn.js';
import { isAlive, waitFor } from '../helpers/wait.js';

const LISTENERS = [
  {
    name: 'web',
    address: '127.0.0.1:0',
    virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'first' } }] }],
  },
];

void t.test('a second mosn start on the same control socket fails; the first keeps serving', async (t) => {
  const m = await startMosn({ workers: 1, listeners: LISTENERS });
  t.teardown(() => m.kill());
  const inode = fs.statSync(m.socket).ino;
  const r = await execa(process.execPath, [MOSN, 'start', '-c', m.configFile], { reject: false, timeout: 30_000 });
  t.equal(r.exitCode, 1, 'exit 1');
  const stderr = String(r.stderr);
  t.match(stderr, /MOSN_ERR_ALREADY_RUNNING/, 'names the error code');
  t.match(stderr, new RegExp(`pid ${m.pid}\\b`), 'names the running pid');
  t.ok(stderr.includes(m.socket), 'names the control socket');
  t.notMatch(String(r.stdout), /listener bound|worker spawned/, 'bound and spawned nothing');

  const s = await m.refresh();
  t.equal(s.phase, 'running', 'first still running');
  t.equal(fs.statSync(m.socket).ino, inode, 'its control socket file untouched');
  t.equal((await get(m.port('web'), '/')).body, 'first', 'first still serving');
  const again = await m.ctl('status');
  t.equal(again.exitCode, 0, 'mosnctl still reaches the first');
});

void t.test('a control socket in a directory that does not exist yet', async (t) => {
  const dir = tempDir();
  const socket = path.join(dir, 'run', 'mosn', 'mosn.sock');
  const m = await startMosn({ workers: 1, control_socket: socket, listeners: LISTENERS }, { dir });
  t.teardown(() => m.kill());
  t.equal(m.status.phase, 'running', 'started');
  t.ok(fs.statSync(socket).isSocket(), 'socket created in the new directory');
});

void t.test('after a supervisor is SIGKILLed, a new one takes over once the lock is stale', async (t) => {
  const first = await startMosn({ workers: 1, listeners: LISTENERS });
  const workers = first.workerPids();
  t.teardown(async () => {
    for (const p of workers) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  first.proc.kill('SIGKILL');
  await first.exited();
  t.ok(fs.existsSync(`${first.socket}.lock`), 'the dead supervisor left its lock');
  t.ok(fs.existsSync(first.socket), 'and its socket file');
  // Orphaned workers notice the supervisor is gone and leave.
  await waitFor(() => workers.every((p) => !isAlive(p)), { timeoutMs: 10_000, what: 'orphaned workers to exit' });

  const started = Date.now();
  const second = await startMosn({ workers: 1, listeners: LISTENERS }, { dir: first.dir, readyTimeoutMs: 30_000 });
  t.teardown(() => second.kill());
  t.equal(second.status.phase, 'running', `second supervisor running after ${Date.now() - started} ms`);
  t.not(second.pid, first.pid);
  t.ok(
    second.logs().some((l) => l['msg'] === 'instance lock held but no supervisor answers; waiting for it to go stale'),
    'it said why it waited',
  );
  t.equal((await get(second.port('web'), '/')).body, 'first', 'serving');
});

void t.test('the instance lock cannot be taken (its directory cannot be created): a clear error, not "already running"', async (t) => {
  // Even root cannot create a directory under a regular file.
  const dir = tempDir();
  const blocker = path.join(dir, 'not-a-dir');
  fs.writeFileSync(blocker, '');
  const cfg = testConfig({ workers: 1, control_socket: path.join(blocker, 'mosn.sock'), listeners: LISTENERS }, dir);
  const file = writeConfig(cfg, dir);
  const r = await execa(process.execPath, [MOSN, 'start', '-c', file], { reject: false, timeout: 30_000 });
  t.equal(r.exitCode, 1, 'exit 1');
  t.match(String(r.stderr), /MOSN_ERR_INSTANCE_LOCK/);
  t.notMatch(String(r.stderr), /ALREADY_RUNNING/);
  t.ok(String(r.stderr).includes(blocker), 'names the path');
});
