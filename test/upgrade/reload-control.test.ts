// Operating reloads: SIGHUP is `mosnctl reload`, concurrent reloads are
// refused, status and metrics tell what happened, and without the Node
// internals for migration a reload drains politely. Real load runs through
// every reload and must see zero errors.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type http from 'node:http';
import t, { type Test } from 'tap';
import YAML from 'yaml';
import { httpBackend, type Backend } from '../helpers/backends.js';
import { fetchMetrics, KeepAliveClient, metricValue, request } from '../helpers/http.js';
import { totalFailures, type Load, type LoadCounts } from '../helpers/load.js';
import { startMosn, testConfig, type MosnOptions, type MosnProcess } from '../helpers/mosn.js';
import { fakeRelease, killMentioning } from '../helpers/release.js';
import { ctlStatus, loadFor, pidsOf } from '../helpers/reload.js';
import { isAlive, waitFor } from '../helpers/wait.js';

interface ReloadJson {
  kind: string;
  ok: boolean;
  duration_ms: number;
  generation: number;
  previous_generation: number;
  migrated: number;
  remaining: number;
  old_generation_exited: boolean;
}

/**
 * A backend that echoes its tag; `/slow` requests are held until `release()`
 * and then answered 500 ms later, so a test decides when they are in flight.
 */
async function gatedBackend(): Promise<Backend & { slow: EventEmitter; release(): void }> {
  const slow = new EventEmitter();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const handler: http.RequestListener = (req, res) => {
    req.resume();
    const answer = (): void => {
      const body = JSON.stringify({ tag: 'a', url: req.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.url?.startsWith('/slow')) {
      slow.emit('request', req.url);
      void gate.then(() => setTimeout(answer, 500));
    } else answer();
  };
  const be = await httpBackend(handler);
  return Object.assign(be, { slow, release: () => open() });
}

function baseConfig(be: Backend, opts: { hello?: string; upgrade?: Record<string, string> } = {}): Record<string, unknown> {
  return {
    upgrade: { ready_timeout: '10s', drain_timeout: '30s', ...opts.upgrade },
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [
              { name: 'hello', match: { prefix: '/hello' }, direct_response: { status: 200, body: opts.hello ?? 'v1' } },
              { name: 'app', match: { prefix: '/' }, route: { cluster: 'app' } },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  };
}

function assertNoLoss(t: Test, c: LoadCounts, what: string): void {
  t.equal(totalFailures(c), 0, `${what}: zero load errors ${JSON.stringify(c.errors)} ${c.samples.join(' | ')}`);
  t.equal(c.refused, 0, `${what}: nothing refused`);
  t.equal(c.resets, 0, `${what}: nothing reset`);
  t.equal(c.badStatus, 0, `${what}: no bad status`);
  t.ok(c.ok > 100, `${what}: the load ran (${c.ok} requests, ${c.connections} connections, ${c.closeHeaders} Connection: close)`);
}

async function setup(
  t: Test,
  opts: { hello?: string; upgrade?: Record<string, string>; mosn?: MosnOptions } = {},
): Promise<{ be: Awaited<ReturnType<typeof gatedBackend>>; m: MosnProcess; load: Load; write: (cfg: Record<string, unknown> | string) => void; config: (o?: { hello?: string; upgrade?: Record<string, string> }) => Record<string, unknown> }> {
  const be = await gatedBackend();
  t.teardown(() => {
    be.release();
    return be.close();
  });
  const m = await startMosn(baseConfig(be, opts), opts.mosn);
  t.teardown(() => m.kill());
  t.teardown(() => {
    if (!t.passing()) t.comment(`mosn output (last 80 non-access lines):\n${m.lines.filter((l) => !l.includes('"log":"access"')).slice(-80).join('\n')}`);
  });
  const load = loadFor(m);
  t.teardown(() => load.stop());
  await load.progress(30);
  return {
    be,
    m,
    load,
    write: (cfg) => fs.writeFileSync(m.configFile, typeof cfg === 'string' ? cfg : YAML.stringify(cfg)),
    config: (o = {}) => testConfig(baseConfig(be, { ...opts, ...o }), m.dir),
  };
}

void t.test('SIGHUP behaves as mosnctl reload', async (t) => {
  const { m, load, write, config } = await setup(t, { hello: 'v1' });
  const ka = new KeepAliveClient(m.port('web'));
  t.teardown(() => ka.close());
  const first = await ka.get('/hello/0');
  t.equal(first.body, 'v1');
  const before = await ctlStatus(m);

  write(config({ hello: 'v2' }));
  process.kill(m.pid, 'SIGHUP');
  await waitFor(
    async () => {
      const s = await ctlStatus(m);
      return s.generation === before.generation + 1 && s.reload_in_progress === null;
    },
    { timeoutMs: 20_000, what: 'the SIGHUP reload to finish' },
  );
  const s = await ctlStatus(m);
  t.equal(s.last_reload?.ok, true, 'last_reload.ok');
  t.equal(s.last_reload?.kind, 'reload');
  t.notOk(pidsOf(s).some((p) => pidsOf(before).includes(p)), 'new workers');
  t.ok(
    m.logs().some((l) => l['msg'] === 'SIGHUP: reloading the config'),
    'the SIGHUP is logged',
  );
  const fresh = await request({ port: m.port('web'), path: '/hello/fresh', agent: false });
  t.equal(fresh.body, 'v2', 'a new connection gets the new body');
  const again = await ka.get('/hello/1');
  t.equal(again.status, 200);
  t.equal(again.body, 'v2', 'the old keep-alive connection gets the new body too');
  t.equal(again.localPort, first.localPort, 'on the same TCP connection');
  t.equal(ka.sockets, 1, 'the keep-alive client opened one connection');
  t.equal((await m.accessLine('/hello/1'))['generation'], before.generation + 1, 'served by the new generation');

  await t.test('a SIGHUP with a bad config logs the failure and changes nothing', async (t) => {
    const good = await ctlStatus(m);
    const lines = YAML.stringify(config({ hello: 'v3' })).split('\n');
    const at = lines.findIndex((l) => l.includes('body: v3'));
    lines[at] = lines[at]!.replace('body: v3', 'body: [v3');
    write(lines.join('\n'));
    const failuresBefore = m.logs().filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('reload failed')).length;
    process.kill(m.pid, 'SIGHUP');
    let failure: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        const f = m.logs().filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('reload failed'));
        failure = f[failuresBefore];
        return failure !== undefined;
      },
      { timeoutMs: 10_000, what: 'the failed reload to be logged' },
    );
    t.equal(failure?.['level'], 'error', 'logged as an error');
    t.equal(failure?.['code'], 'MOSN_ERR_CONFIG_INVALID');
    t.match(String(failure?.['msg']), `${m.configFile}:`, 'the log names the file and position');
    t.match(String(failure?.['msg']), 'nothing changed');
    const s = await ctlStatus(m);
    t.equal(s.generation, good.generation, 'same generation');
    t.same(pidsOf(s), pidsOf(good), 'same worker pids');
    t.equal(s.last_reload?.ok, false, 'last_reload.ok is false');
    t.equal(s.last_reload?.error?.code, 'MOSN_ERR_CONFIG_INVALID');
    const r = await ka.get('/hello/2');
    t.equal(r.body, 'v2', 'still the old body');
    t.equal(r.localPort, first.localPort, 'still the same TCP connection');
    write(config({ hello: 'v2' }));
  });

  assertNoLoss(t, await load.stop(), 'SIGHUP');
});

void t.test('a concurrent reload or upgrade is refused', async (t) => {
  const { m, load, write, config } = await setup(t);
  const before = await ctlStatus(m);

  await t.test('two mosnctl reload at once: one applies, one is refused', async (t) => {
    const [a, b] = await Promise.all([m.ctl('reload', '--json'), m.ctl('reload', '--json')]);
    const ok = [a, b].filter((r) => r.exitCode === 0);
    const refused = [a, b].filter((r) => r.exitCode === 1);
    t.equal(ok.length, 1, `exactly one succeeds (exit codes ${a.exitCode}, ${b.exitCode}; stderr: ${a.stderr} ${b.stderr})`);
    t.equal(refused.length, 1, 'the other exits 1');
    t.match(refused[0]?.stderr ?? '', 'MOSN_ERR_IN_PROGRESS');
    t.match(refused[0]?.stderr ?? '', 'in progress');
    const s = await ctlStatus(m);
    t.equal(s.generation, before.generation + 1, 'exactly one new generation');
    t.equal(s.last_reload?.ok, true, 'the refusal does not overwrite last_reload');
  });

  await t.test('reload, upgrade and SIGHUP are refused while a slow upgrade runs', async (t) => {
    const dir = fakeRelease('hang');
    t.teardown(() => {
      killMentioning(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    // Long enough that two mosnctl processes start and get refused while it runs on a busy box.
    write(config({ upgrade: { ready_timeout: '6s' } }));
    const current = await ctlStatus(m);
    const slow = m.ctl('upgrade', dir);
    await waitFor(async () => (await ctlStatus(m)).reload_in_progress === 'upgrade', { timeoutMs: 5000, what: 'the upgrade to be in progress' });
    const [r1, r2] = await Promise.all([m.ctl('reload'), m.ctl('upgrade')]);
    // The slow upgrade must still be running, or the refusals prove nothing.
    t.equal((await ctlStatus(m)).reload_in_progress, 'upgrade', 'the slow upgrade was still running');
    t.equal(r1.exitCode, 1, 'reload refused');
    t.match(r1.stderr, /MOSN_ERR_IN_PROGRESS/);
    t.match(r1.stderr, /cannot reload: an? upgrade is already in progress/);
    t.equal(r2.exitCode, 1, 'upgrade refused');
    t.match(r2.stderr, /MOSN_ERR_IN_PROGRESS/);
    const refusalsBefore = m.logs().filter((l) => l['code'] === 'MOSN_ERR_IN_PROGRESS').length;
    process.kill(m.pid, 'SIGHUP');
    await waitFor(() => m.logs().filter((l) => l['code'] === 'MOSN_ERR_IN_PROGRESS').length > refusalsBefore, {
      timeoutMs: 5000,
      what: 'the refused SIGHUP reload to be logged',
    });
    const r = await slow;
    t.equal(r.exitCode, 1, 'the slow upgrade rolls back');
    t.match(r.stderr, 'rolled back');
    const s = await ctlStatus(m);
    t.equal(s.generation, current.generation, 'nothing changed');
    t.same(pidsOf(s), pidsOf(current), 'same workers');
    write(config());
    const ok = await m.ctl('reload', '--json');
    t.equal(ok.exitCode, 0, `a reload works again: ${ok.stderr}`);
  });

  assertNoLoss(t, await load.stop(), 'concurrent reloads');
});

void t.test('status and metrics after reloads', async (t) => {
  const { be, m, load, write, config } = await setup(t);
  const port = m.port('web');
  const admin = m.adminPort;
  // Poll /metrics throughout: mosn_http_requests_total must never decrease.
  const totals: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const text = await fetchMetrics(admin).catch(() => undefined);
      if (text) totals.push(metricValue(text, 'mosn_http_requests_total') ?? 0);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  t.teardown(async () => {
    polling = false;
    await poller;
  });
  const results: ReloadJson[] = [];
  const reload = async (): Promise<ReloadJson> => {
    const r = await m.ctl('reload', '--json');
    t.equal(r.exitCode, 0, `reload ok: ${r.stderr}`);
    if (r.exitCode !== 0) throw new Error(`reload failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout) as ReloadJson;
    results.push(res);
    return res;
  };
  await reload();
  await load.progress(30);
  write('workers: [\n');
  const bad = await m.ctl('reload');
  t.equal(bad.exitCode, 1, 'a failed reload');
  write(config());
  await reload();
  await load.progress(30);

  // A slow request holds the old generation: status shows it draining.
  const held = request({ port, path: '/slow/held', agent: false, timeoutMs: 20_000 });
  await new Promise((r) => be.slow.once('request', r));
  const last = await reload();
  t.equal(last.old_generation_exited, false, 'the old generation still holds the slow request');
  t.ok(last.remaining >= 1, `remaining ${last.remaining}`);
  const s = await ctlStatus(m);
  t.equal(s.generation, last.generation);
  t.same(
    s.generations.map((g) => [g.id, g.state]),
    [
      [last.generation, 'current'],
      [last.previous_generation, 'draining'],
    ],
    'generations: the current one and the draining one',
  );
  t.equal(s.draining_generations, 1);
  t.equal(s.last_reload?.ok, true);
  t.equal(s.last_reload?.kind, 'reload');
  t.equal(s.last_reload?.generation, last.generation);
  t.ok((s.last_reload?.duration_ms ?? 0) > 0, `last_reload.duration_ms ${s.last_reload?.duration_ms}`);
  const migratedInResults = results.reduce((n, r) => n + r.migrated, 0);
  t.ok(s.migrated.http > 0, `connections were migrated (${JSON.stringify(s.migrated)})`);
  t.ok(s.migrated.http >= migratedInResults, `migrated totals (${s.migrated.http}) cover the reload results (${migratedInResults})`);
  const human = await m.ctl('status');
  t.equal(human.exitCode, 0);
  t.match(human.stdout, `generation ${last.generation} (current)`, 'the human status prints the current generation');
  t.match(human.stdout, `generation ${last.previous_generation} (draining)`, 'and the draining one');

  be.release();
  const heldReply = await held;
  t.equal(heldReply.status, 200, 'the slow request completes in the old generation');
  await waitFor(async () => (await ctlStatus(m)).generations.length === 1, { timeoutMs: 10_000, what: 'the old generation to exit' });

  const counts = await load.stop();
  assertNoLoss(t, counts, 'status and metrics');
  const metrics = await fetchMetrics(admin);
  t.equal(metricValue(metrics, 'mosn_reloads_total', { kind: 'reload', result: 'success' }), 3, 'mosn_reloads_total{kind="reload",result="success"} 3');
  t.equal(metricValue(metrics, 'mosn_reloads_total', { kind: 'reload', result: 'failure' }), 1, 'mosn_reloads_total{kind="reload",result="failure"} 1');
  t.equal(metricValue(metrics, 'mosn_generation'), last.generation, 'mosn_generation is the current generation');
  // Every request the load completed was counted by some worker, retired or live.
  await waitFor(async () => (metricValue(await fetchMetrics(admin), 'mosn_http_requests_total') ?? 0) >= counts.ok + 1, {
    timeoutMs: 10_000,
    what: `mosn_http_requests_total to cover the ${counts.ok} load requests`,
  });
  polling = false;
  await poller;
  t.ok(totals.length > 10, `polled /metrics ${totals.length} times`);
  const drops = totals.flatMap((v, i) => (i > 0 && v < totals[i - 1]! ? [`${totals[i - 1]} -> ${v}`] : []));
  t.same(drops, [], 'mosn_http_requests_total never decreased across reloads');
});

void t.test('without the migration internals a reload drains politely', async (t) => {
  const { be, m, load } = await setup(t, { mosn: { env: { MOSN_DISABLE_MIGRATION_INTERNALS: '1' } }, upgrade: { drain_timeout: '30s' } });
  const warning = m.logs().find((l) => l['role'] === 'supervisor' && l['level'] === 'warn' && String(l['msg']).includes('migration are missing'));
  t.ok(warning, 'a warning is logged at start');
  t.match(JSON.stringify(warning?.['missing']), 'MOSN_DISABLE_MIGRATION_INTERNALS');
  const port = m.port('web');
  const ka = new KeepAliveClient(port);
  t.teardown(() => ka.close());
  const first = await ka.get('/hello/0');
  t.equal(first.status, 200);
  const before = await ctlStatus(m);

  // The slow request rides a keep-alive connection of its own: its response
  // is that connection's next response, so it must say Connection: close,
  // and the client's next request must not race a close.
  const kaSlow = new KeepAliveClient(port);
  t.teardown(() => kaSlow.close());
  const held = kaSlow.get('/slow/polite', 20_000);
  await new Promise((r) => be.slow.once('request', r));
  const r = await m.ctl('reload', '--json');
  t.equal(r.exitCode, 0, `reload ok: ${r.stderr}`);
  const res = JSON.parse(r.stdout) as ReloadJson;
  t.equal(res.migrated, 0, 'the reload result reports migrated 0');
  t.ok(res.remaining >= 2, `the old generation still holds the idle keep-alive connection and the slow request (remaining ${res.remaining})`);
  t.equal(res.old_generation_exited, false);
  t.equal((await ctlStatus(m)).migrated.http, 0, 'status: nothing migrated');

  const after = await ka.get('/hello/after');
  t.equal(after.status, 200);
  t.equal(after.localPort, first.localPort, 'the first request after the reload uses the old connection');
  t.equal(after.headers.connection, 'close', 'and gets Connection: close');
  t.equal((await m.accessLine('/hello/after'))['generation'], before.generation, 'from the OLD generation');
  const next = await ka.get('/hello/next');
  t.equal(next.status, 200);
  t.not(next.localPort, first.localPort, 'the client reconnected');
  t.equal(ka.sockets, 2, 'exactly one new connection');
  t.equal((await m.accessLine('/hello/next'))['generation'], res.generation, 'served by the new generation');

  be.release();
  const heldReply = await held;
  t.equal(heldReply.status, 200, 'the in-flight slow request completes with 200');
  t.equal(heldReply.headers.connection, 'close', 'its response (the first after the reload) says Connection: close');
  const reuse = await kaSlow.get('/hello/reuse');
  t.equal(reuse.status, 200, 'the same client\'s next request succeeds');
  t.equal(kaSlow.sockets, 2, 'on a new connection');
  const heldLine = await m.accessLine('/slow/polite');
  t.equal(heldLine['generation'], before.generation, 'in the generation that started it');
  const oldPids = before.generations[0]!.workers.map((w) => w.pid);
  const released = Date.now();
  await waitFor(() => oldPids.every((p) => !isAlive(p)), { timeoutMs: 15_000, what: 'the old generation to exit' });
  t.ok(Date.now() - released < 15_000, `the old generation exited ${Date.now() - released} ms after its last request, before drain_timeout (30 s)`);
  t.notOk(
    m.logs().some((l) => l['msg'] === 'drain timeout: closing what remains'),
    'no drain timeout was needed',
  );
  const counts = await load.stop();
  assertNoLoss(t, counts, 'polite drain');
  t.ok(counts.closeHeaders >= 1, `keep-alive load loops were told Connection: close (${counts.closeHeaders})`);
});

void t.test('with the migration internals the same keep-alive client is migrated', async (t) => {
  const { m, load } = await setup(t);
  t.notOk(
    m.logs().some((l) => String(l['msg']).includes('migration are missing')),
    'no fallback warning',
  );
  const ka = new KeepAliveClient(m.port('web'));
  t.teardown(() => ka.close());
  const first = await ka.get('/hello/0');
  const r = await m.ctl('reload', '--json');
  t.equal(r.exitCode, 0, `reload ok: ${r.stderr}`);
  const res = JSON.parse(r.stdout) as ReloadJson;
  t.ok(res.migrated >= 1, `migrated ${res.migrated}`);
  const after = await ka.get('/hello/after');
  t.equal(after.status, 200);
  t.equal(after.localPort, first.localPort, 'same TCP connection');
  t.not(after.headers.connection, 'close', `no Connection: close (${after.headers.connection})`);
  t.equal((await m.accessLine('/hello/after'))['generation'], res.generation, 'served by the new generation');
  t.equal(ka.sockets, 1, 'no reconnection');
  const counts = await load.stop();
  assertNoLoss(t, counts, 'migration');
  t.equal(counts.closeHeaders, 0, 'no keep-alive load loop was told Connection: close');
});
