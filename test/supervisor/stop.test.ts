// Stopping: graceful (SIGTERM, `mosnctl stop`) finishes in-flight requests
// and exits 0; drain_timeout cuts what never finishes; SIGINT is a fast stop,
// also when it follows a SIGTERM whose drain is still running.
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import type http from 'node:http';
import t, { type Test } from 'tap';
import { get, request, type Outcome } from '../helpers/clients.js';
import { httpBackend } from '../helpers/backends.js';
import { startMosn, type MosnProcess } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

/**
 * 64 KiB of known bytes: /slow sends the first half at once and the rest
 * when the test calls release() (after ~1 s of checks), or after 1 s.
 */
const BODY = Buffer.alloc(64 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789').toString('latin1');

interface SlowBackend {
  readonly address: string;
  readonly arrivals: EventEmitter;
  /** Lets every /slow response finish. */
  readonly release: () => void;
}

async function slowBackend(t: Test): Promise<SlowBackend> {
  const arrivals = new EventEmitter();
  const gate = new EventEmitter();
  const hanging = new Set<http.ServerResponse>();
  const be = await httpBackend((req, res) => {
    arrivals.emit('request', req.url);
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
      res.write(BODY.slice(0, BODY.length / 2));
      gate.once('release', () => res.end(BODY.slice(BODY.length / 2)));
    } else if (req.url === '/hang') {
      hanging.add(res); // never answered
    } else res.end('ok');
  });
  t.teardown(() => be.close());
  return { address: be.address, arrivals, release: () => gate.emit('release') };
}

function config(backend: string, drainTimeout = '30s'): Record<string, unknown> {
  return {
    workers: 2,
    upgrade: { drain_timeout: drainTimeout },
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
      },
    ],
    clusters: [{ name: 'app', endpoints: [backend] }],
  };
}

/**
 * Starts a request to `path` and resolves once the backend has it (the
 * outcome is wrapped: an async function would otherwise adopt it).
 */
async function inFlight(m: MosnProcess, arrivals: EventEmitter, path: string): Promise<{ outcome: Promise<Outcome> }> {
  const arrived = once(arrivals, 'request');
  const outcome = request({ port: m.port('web'), path, timeoutMs: 60_000 });
  const [url] = (await arrived) as [string];
  if (url !== path) throw new Error(`backend saw ${url}, expected ${path}`);
  return { outcome };
}

async function waitStopping(m: MosnProcess): Promise<void> {
  await waitFor(() => m.logs().some((l) => l['msg'] === 'supervisor phase running -> stopping'), { timeoutMs: 5000, what: 'phase stopping' });
}

function lockPath(m: MosnProcess): string {
  return `${m.socket}.lock`;
}

/** While draining: new connections are refused at once, never left hanging. */
async function assertRefusesNewConnections(t: Test, m: MosnProcess): Promise<void> {
  const seen: string[] = [];
  await waitFor(
    async () => {
      const r = await request({ port: m.port('web'), path: '/fast', timeoutMs: 1500 });
      seen.push(r.ok ? String(r.status) : r.error!);
      return r.error === 'ECONNREFUSED';
    },
    { timeoutMs: 3000, what: 'new connections to be refused while draining' },
  );
  t.ok(
    seen.every((s) => s === '200' || s === 'ECONNREFUSED'),
    `new connections during the drain were served or refused, never hung or reset (${seen.join(' ')})`,
  );
}

async function assertCleanExit(t: Test, m: MosnProcess, workerPids: number[]): Promise<void> {
  const exit = await m.exited(30_000);
  t.same(exit, { code: 0, signal: null }, 'supervisor exited 0');
  t.notOk(fs.existsSync(m.socket), 'control socket file removed');
  t.notOk(fs.existsSync(lockPath(m)), 'instance lock removed');
  for (const pid of workerPids) t.throws(() => process.kill(pid, 0), `worker ${pid} is gone`);
  t.ok(
    m.logs().some((l) => l['msg'] === 'supervisor phase stopping -> stopped'),
    'phase stopped logged',
  );
  const exits = m.logs().filter((l) => l['msg'] === 'worker exited');
  t.same(
    exits.map((l) => [l['worker_pid'], l['code'], l['signal']]).sort(),
    workerPids.map((p) => [p, 0, null]).sort(),
    'every worker exited by itself with code 0',
  );
  t.notOk(m.lines.some((l) => /Error|ERR_/.test(l) && !l.includes('MOSN_ERR_')), 'no error stack in the output');
}

void t.test('SIGTERM: an in-flight slow request completes with its full body, exit 0', async (t) => {
  const { address, arrivals, release } = await slowBackend(t);
  const m = await startMosn(config(address));
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  t.ok(fs.existsSync(m.socket), 'control socket exists while running');
  const { outcome } = await inFlight(m, arrivals, '/slow');
  const stopAt = Date.now();
  process.kill(m.pid, 'SIGTERM');
  await waitStopping(m);
  t.equal((await get(m.adminPort, '/ready')).status, 503, '/ready answers 503 while draining');
  await assertRefusesNewConnections(t, m);
  t.equal((await m.refresh()).phase, 'stopping', 'still draining the slow request');
  release();
  const r = await outcome;
  t.ok(r.ok, `slow request completed (${r.error ?? 'ok'})`);
  t.equal(r.status, 200);
  t.equal(r.body?.length, BODY.length, 'full body length');
  t.ok(r.body === BODY, 'full body content');
  await assertCleanExit(t, m, pids);
  t.ok(Date.now() - stopAt < 10_000, 'stopped well within drain_timeout (30s)');
});

void t.test('mosnctl stop: same graceful stop; a second stop is refused while stopping', async (t) => {
  const { address, arrivals, release } = await slowBackend(t);
  const m = await startMosn(config(address));
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  const { outcome } = await inFlight(m, arrivals, '/slow');
  const ctl = await m.ctl('stop');
  t.equal(ctl.exitCode, 0, `mosnctl stop exits 0 (${ctl.stderr})`);
  t.match(ctl.stdout, /stop: ok/);
  await waitStopping(m);
  const again = await m.ctl('stop');
  t.equal(again.exitCode, 1, 'a second stop fails');
  t.match(again.stderr, /MOSN_ERR_SHUTTING_DOWN/);
  release();
  const r = await outcome;
  t.ok(r.ok, `slow request completed (${r.error ?? 'ok'})`);
  t.equal(r.status, 200);
  t.ok(r.body === BODY, 'full body');
  await assertCleanExit(t, m, pids);
});

void t.test('drain_timeout: a request that never finishes is cut at the deadline, exit 0', async (t) => {
  const DRAIN_MS = 1000;
  const { address, arrivals } = await slowBackend(t);
  const m = await startMosn(config(address, `${DRAIN_MS}ms`));
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  const { outcome } = await inFlight(m, arrivals, '/hang');
  const stopAt = Date.now();
  process.kill(m.pid, 'SIGTERM');
  const r = await outcome;
  const cutAfter = Date.now() - stopAt;
  t.notOk(r.ok, `the hanging request was cut (${r.error})`);
  t.ok(cutAfter >= DRAIN_MS - 50, `not before drain_timeout (${cutAfter} ms)`);
  t.ok(cutAfter < DRAIN_MS + 1500, `at drain_timeout (${cutAfter} ms)`);
  await assertCleanExit(t, m, pids);
  const exitedAfter = Date.now() - stopAt;
  t.ok(exitedAfter < DRAIN_MS + 2000, `supervisor exited within drain_timeout + 2s (${exitedAfter} ms)`);
  t.ok(
    m.logs().some((l) => l['msg'] === 'drain timeout: closing what remains'),
    'the worker logged the drain timeout',
  );
});

void t.test('SIGINT: fast stop exits promptly, cutting in-flight work', async (t) => {
  const { address, arrivals } = await slowBackend(t);
  const m = await startMosn(config(address, '30s'));
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  const { outcome } = await inFlight(m, arrivals, '/hang');
  const stopAt = Date.now();
  process.kill(m.pid, 'SIGINT');
  const r = await outcome;
  t.notOk(r.ok, `in-flight request cut (${r.error})`);
  await assertCleanExit(t, m, pids);
  const took = Date.now() - stopAt;
  t.ok(took < 3000, `exited promptly (${took} ms)`);
});

void t.test('SIGINT during a graceful drain escalates to a fast stop', async (t) => {
  const { address, arrivals } = await slowBackend(t);
  const m = await startMosn(config(address, '30s'));
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  const { outcome } = await inFlight(m, arrivals, '/hang');
  process.kill(m.pid, 'SIGTERM');
  await waitStopping(m);
  const stopAt = Date.now();
  process.kill(m.pid, 'SIGINT');
  const r = await outcome;
  t.notOk(r.ok, `in-flight request cut (${r.error})`);
  await assertCleanExit(t, m, pids);
  const took = Date.now() - stopAt;
  t.ok(took < 3000, `exited promptly after SIGINT (${took} ms), not after the 30s drain`);
});
