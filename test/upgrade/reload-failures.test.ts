// Failed reloads and upgrades change nothing, say why, and lose nothing:
// every case runs under real load (keep-alive and new-connection loops),
// and the load must see zero errors, refusals or resets.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import YAML from 'yaml';
import { echoHandler, httpBackend, type Backend } from '../helpers/backends.js';
import { totalFailures, type Load } from '../helpers/load.js';
import { startMosn, testConfig, type MosnProcess } from '../helpers/mosn.js';
import { fakeRelease, killMentioning, processesMentioning } from '../helpers/release.js';
import { ctlStatus, loadFor, pidsOf, type CtlStatus } from '../helpers/reload.js';
import { waitFor } from '../helpers/wait.js';

function baseConfig(be: Backend, upgrade: Record<string, string> = {}): Record<string, unknown> {
  return {
    upgrade: { ready_timeout: '10s', drain_timeout: '20s', ...upgrade },
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ name: 'app', match: { prefix: '/' }, route: { cluster: 'app' } }] }],
      },
    ],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  };
}

async function setup(t: Test): Promise<{ be: Backend; m: MosnProcess; load: Load; good: () => Record<string, unknown>; write: (cfg: Record<string, unknown> | string) => void }> {
  const be = await httpBackend(echoHandler('a'));
  t.teardown(() => be.close());
  const m = await startMosn(baseConfig(be));
  t.teardown(() => m.kill());
  t.teardown(() => {
    if (!t.passing()) t.comment(`mosn output (last 80 non-access lines):\n${m.lines.filter((l) => !l.includes('"log":"access"')).slice(-80).join('\n')}`);
  });
  const load = loadFor(m);
  t.teardown(() => load.stop());
  await load.progress(30);
  const good = (): Record<string, unknown> => testConfig(baseConfig(be), m.dir);
  const write = (cfg: Record<string, unknown> | string): void => fs.writeFileSync(m.configFile, typeof cfg === 'string' ? cfg : YAML.stringify(cfg));
  return { be, m, load, good, write };
}

/** The reload failed and nothing changed: same generation, same worker pids, last_reload says failure. */
async function assertUnchanged(t: Test, m: MosnProcess, before: CtlStatus, kind: string, code: string): Promise<void> {
  const s = await ctlStatus(m);
  t.equal(s.generation, before.generation, 'same generation');
  t.same(pidsOf(s), pidsOf(before), 'same worker pids');
  t.equal(s.generations.length, 1, 'no other generation is left behind');
  t.equal(s.reload_in_progress, null, 'no reload in progress any more');
  t.equal(s.last_reload?.ok, false, 'last_reload.ok is false');
  t.equal(s.last_reload?.kind, kind, `last_reload.kind is ${kind}`);
  t.equal(s.last_reload?.error?.code, code, `last_reload.error.code is ${code}`);
}

async function assertLoadClean(t: Test, load: Load, what: string): Promise<void> {
  await load.progress(30); // the load still flows after the failure
  const c = load.snapshot();
  t.equal(totalFailures(c), 0, `${what}: load saw no error ${JSON.stringify(c.errors)} ${c.samples.join(' | ')}`);
}

void t.test('reload with a bad config leaves traffic untouched and says why', async (t) => {
  const { m, load, good, write } = await setup(t);
  const before = await ctlStatus(m);
  t.equal(before.generation, 1);
  t.equal(pidsOf(before).length, 2, 'two workers');

  await t.test('(a) YAML syntax error', async (t) => {
    // A tab used as indentation on a known line.
    const lines = YAML.stringify(good()).split('\n');
    const at = lines.findIndex((l) => /^ {4}address: 127\.0\.0\.1:0$/.test(l));
    t.ok(at > 0, 'found the listener address line');
    lines[at] = '\t' + lines[at]!.trimStart();
    write(lines.join('\n'));
    const r = await m.ctl('reload');
    t.equal(r.exitCode, 1, 'mosnctl reload exits 1');
    t.match(r.stderr, 'MOSN_ERR_CONFIG_INVALID');
    t.match(r.stderr, 'nothing changed');
    t.match(r.stderr, `${m.configFile}:${at + 1}:1`, 'names the position FILE:LINE:COL');
    t.match(r.stderr, /invalid YAML: Tabs are not allowed/);
    await assertUnchanged(t, m, before, 'reload', 'MOSN_ERR_CONFIG_INVALID');
    await assertLoadClean(t, load, 'YAML syntax error');
  });

  await t.test('(b) a route to an unknown cluster', async (t) => {
    const cfg = good();
    const l = (cfg['listeners'] as { virtual_hosts: { routes: { route: { cluster: string } }[] }[] }[])[0]!;
    l.virtual_hosts[0]!.routes[0]!.route.cluster = 'nowhere';
    const text = YAML.stringify(cfg);
    write(text);
    const lines = text.split('\n');
    const line = lines.findIndex((x) => x.includes('cluster: nowhere')) + 1;
    const col = lines[line - 1]!.indexOf('nowhere') + 1;
    t.ok(line > 0);
    const r = await m.ctl('reload');
    t.equal(r.exitCode, 1, 'mosnctl reload exits 1');
    t.match(r.stderr, `${m.configFile}:${line}:${col} listeners[0].virtual_hosts[0].routes[0].route.cluster`, 'names FILE:LINE:COL and the path');
    t.match(r.stderr, 'cluster "nowhere" is not defined');
    await assertUnchanged(t, m, before, 'reload', 'MOSN_ERR_CONFIG_INVALID');
    await assertLoadClean(t, load, 'unknown cluster');
  });

  await t.test('(c) a new listener on a port already taken', async (t) => {
    const blocker = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
    const taken = (blocker.address() as net.AddressInfo).port;
    const cfg = good();
    const listeners = cfg['listeners'] as Record<string, unknown>[];
    listeners.push({ ...listeners[0], name: 'extra', address: `127.0.0.1:${taken}` });
    write(cfg);
    const r = await m.ctl('reload');
    t.equal(r.exitCode, 1, 'mosnctl reload exits 1');
    t.match(r.stderr, `listener "extra": cannot bind 127.0.0.1:${taken}: EADDRINUSE`, 'names the listener, the address and EADDRINUSE');
    t.match(r.stderr, 'MOSN_ERR_LISTEN');
    await assertUnchanged(t, m, before, 'reload', 'MOSN_ERR_LISTEN');
    const s = await m.refresh();
    t.same(
      s.listeners.map((x) => x.name),
      ['web'],
      'the listener set is unchanged',
    );
    await assertLoadClean(t, load, 'port taken');
  });

  await t.test('the good config reloads again', async (t) => {
    write(good());
    const r = await m.ctl('reload', '--json');
    t.equal(r.exitCode, 0, `reload succeeds: ${r.stderr}`);
    const res = JSON.parse(r.stdout) as { ok: boolean; generation: number };
    t.equal(res.generation, before.generation + 1, 'generation + 1');
    const s = await ctlStatus(m);
    t.equal(s.generation, before.generation + 1);
    t.equal(s.last_reload?.ok, true);
    const current = s.generations.find((g) => g.id === s.generation)!.workers.map((w) => w.pid);
    t.equal(current.length, 2, 'two workers in the new generation');
    t.notOk(current.some((p) => pidsOf(before).includes(p)), 'the new generation runs new worker processes');
  });

  const counts = await load.stop();
  t.equal(totalFailures(counts), 0, `zero load errors overall: ${JSON.stringify(counts.errors)} ${counts.samples.join(' | ')}`);
  t.equal(counts.refused, 0, 'nothing refused');
  t.equal(counts.resets, 0, 'nothing reset');
  t.equal(counts.badStatus, 0, 'no bad status');
  t.ok(counts.ok > 200, `the load ran (${counts.ok} requests over ${counts.connections} connections)`);
});

void t.test('a new generation that cannot start is rolled back with zero losses', async (t) => {
  const { be, m, load, good, write } = await setup(t);
  const before = await ctlStatus(m);

  await t.test('a worker that exits with code 3 at start', async (t) => {
    const dir = fakeRelease('crash');
    t.teardown(() => {
      killMentioning(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const r = await m.ctl('upgrade', dir);
    t.equal(r.exitCode, 1, 'mosnctl upgrade exits 1');
    t.match(r.stderr, 'rolled back', 'says it rolled back');
    t.match(r.stderr, `generation ${before.generation} keeps serving`);
    t.match(r.stderr, /exited before ready \(code 3/, 'says why: the worker exited with code 3');
    t.match(r.stderr, 'MOSN_ERR_RELOAD_FAILED');
    await assertUnchanged(t, m, before, 'upgrade', 'MOSN_ERR_RELOAD_FAILED');
    await waitFor(() => processesMentioning(path.join(dir, 'dist/worker/main.js')).length === 0, { timeoutMs: 5000, what: `no process of ${dir} left` });
    await assertLoadClean(t, load, 'crashing release');
  });

  await t.test('a worker that never becomes ready (ready_timeout 1s)', async (t) => {
    const dir = fakeRelease('hang');
    t.teardown(() => {
      killMentioning(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    write(testConfig(baseConfig(be, { ready_timeout: '1s' }), m.dir));
    let seen = 0;
    const t0 = Date.now();
    const pending = m.ctl('upgrade', dir);
    // While it runs, the fake workers exist (so the orphan check below can see them).
    await waitFor(() => (seen = processesMentioning(path.join(dir, 'dist/worker/main.js')).length) >= 2, { timeoutMs: 5000, what: 'both fake workers to run' });
    t.equal(seen, 2, 'both fake workers were started');
    const r = await pending;
    const took = Date.now() - t0;
    t.equal(r.exitCode, 1, 'mosnctl upgrade exits 1');
    t.match(r.stderr, 'rolled back');
    t.match(r.stderr, /not ready within 1000 ms/, 'says why: not ready within ready_timeout');
    t.ok(took >= 1000, `waited for ready_timeout (${took} ms)`);
    t.ok(took < 8000, `rolled back soon after ready_timeout (${took} ms)`);
    await assertUnchanged(t, m, before, 'upgrade', 'MOSN_ERR_RELOAD_FAILED');
    const d = (await ctlStatus(m)).last_reload!.duration_ms;
    t.ok(d >= 1000 && d < 8000, `last_reload.duration_ms ${d} covers the ready_timeout`);
    // The rollback follows the ready_timeout, counted from the new workers'
    // spawn (starting the successor supervisor before it takes a load-dependent
    // second or two): the supervisors' own log timestamps.
    const logs = m.logs().filter((l) => Date.parse(String(l['time'])) >= t0);
    const spawned = logs.filter((l) => l['msg'] === 'worker spawned' && l['generation'] === 2).map((l) => Date.parse(String(l['time'])));
    const failed = logs.find((l) => l['code'] === 'MOSN_ERR_RELOAD_FAILED' && /not ready within 1000 ms/.test(String(l['msg'])));
    t.equal(spawned.length, 2, 'the successor logged both workers spawned');
    t.ok(failed, 'the old supervisor logged the failed upgrade');
    // (The timer is armed just before the first spawn is logged: allow that skew below 1000.)
    const afterSpawn = Date.parse(String(failed?.['time'])) - Math.min(...spawned);
    t.ok(afterSpawn >= 900 && afterSpawn < 3000, `rolled back ~1s after the new workers were spawned (${afterSpawn} ms)`);
    await waitFor(() => processesMentioning(path.join(dir, 'dist/worker/main.js')).length === 0, { timeoutMs: 5000, what: `no process of ${dir} left (orphans)` });
    await assertLoadClean(t, load, 'hanging release');
  });

  await t.test('an incomplete release directory', async (t) => {
    const dir = fakeRelease('missing');
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const r = await m.ctl('upgrade', dir);
    t.equal(r.exitCode, 1, 'mosnctl upgrade exits 1');
    t.match(r.stderr, 'MOSN_ERR_RELEASE_INVALID');
    t.match(r.stderr, path.join('dist', 'worker', 'main.js'), 'names what is missing');
    await assertUnchanged(t, m, before, 'upgrade', 'MOSN_ERR_RELEASE_INVALID');
    await assertLoadClean(t, load, 'incomplete release');
  });

  await t.test('after the rollbacks a reload still works', async (t) => {
    write(good());
    const r = await m.ctl('reload', '--json');
    t.equal(r.exitCode, 0, `reload succeeds: ${r.stderr}`);
    const gen = (JSON.parse(r.stdout) as { generation: number }).generation;
    // Rolled-back generations keep their (log-visible) numbers: the next one is higher, not necessarily +1.
    t.ok(gen > before.generation, `a newer generation serves (${gen})`);
    t.equal((await ctlStatus(m)).generation, gen);
  });

  const counts = await load.stop();
  t.equal(totalFailures(counts), 0, `zero load errors overall: ${JSON.stringify(counts.errors)} ${counts.samples.join(' | ')}`);
  t.ok(counts.ok > 200, `the load ran (${counts.ok} requests)`);
});
