// Supervisor handover (mosnctl upgrade, SIGUSR2): a new supervisor process
// from a release directory takes over listeners, control socket, admin
// port, lock, counters and every live connection; the old one exits. Under
// load, counted: zero errors, refusals, resets, lost bytes.
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { echoHandler, httpBackend, tcpBackend, tcpEcho } from '../helpers/backends.js';
import { fetchMetrics, KeepAliveClient, metricValue } from '../helpers/http.js';
import { startLoad, totalFailures } from '../helpers/load.js';
import { startMosn, type MosnProcess } from '../helpers/mosn.js';
import { testNodes } from '../helpers/nodes.js';
import { copyRelease, fakeRelease, killMentioning, processesRunning } from '../helpers/release.js';
import { isAlive, waitFor } from '../helpers/wait.js';

interface UpgradeResult {
  generation: number;
  migrated: number;
  supervisor: { previous_pid: number; pid: number; node: string };
}

/** A TCP stream through the proxy that must come back byte-exact. */
function byteStream(port: number): { sock: net.Socket; finish(): Promise<{ sent: number; received: number; ok: boolean; error?: string }> } {
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  let sent = 0;
  let received = 0;
  let ok = true;
  let error: string | undefined;
  let stop = false;
  sock.on('data', (c: Buffer) => {
    for (let k = 0; k < c.length && ok; k++) if (c[k] !== (received + k) % 251) ok = false;
    received += c.length;
  });
  sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  const timer = setInterval(() => {
    if (stop) return;
    const b = Buffer.alloc(8192);
    for (let k = 0; k < b.length; k++) b[k] = (sent + k) % 251;
    sent += b.length;
    sock.write(b);
  }, 5);
  return {
    sock,
    finish: () =>
      new Promise((resolve) => {
        stop = true;
        clearInterval(timer);
        sock.end();
        sock.on('close', () => resolve({ sent, received, ok, ...(error ? { error } : {}) }));
      }),
  };
}

async function setup(t: Test, opts: { node?: string; ready_timeout?: string } = {}): Promise<{ m: MosnProcess; web: number; stream: number }> {
  const be = await httpBackend(echoHandler('be'));
  const echo = await tcpBackend(tcpEcho);
  t.teardown(() => be.close());
  t.teardown(() => echo.close());
  const m = await startMosn(
    {
      upgrade: { ready_timeout: opts.ready_timeout ?? '10s', drain_timeout: '10s' },
      listeners: [
        { name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
        { name: 'stream', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'echo' },
      ],
      clusters: [
        { name: 'app', endpoints: [be.address] },
        { name: 'echo', endpoints: [echo.address] },
      ],
    },
    opts.node ? { node: opts.node } : {},
  );
  t.teardown(() => m.kill());
  return { m, web: m.port('web'), stream: m.port('stream') };
}

void t.test('mosnctl upgrade hands the whole service to a new supervisor, under load, losing nothing', async (t) => {
  const { m, web, stream } = await setup(t);
  const oldPid = m.status.pid;
  const adminPort = m.adminPort;
  const load = startLoad({ port: web });
  t.teardown(() => load.stop());
  const ka = new KeepAliveClient(web);
  t.teardown(() => ka.close());
  t.equal((await ka.get('/before')).status, 200);
  const s = byteStream(stream);
  await load.progress(50);
  const before = metricValue(await fetchMetrics(adminPort), 'mosn_http_requests_total') ?? 0;

  const r = await m.ctl('upgrade', '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const res = JSON.parse(r.stdout) as UpgradeResult;
  t.equal(res.supervisor.previous_pid, oldPid);
  t.not(res.supervisor.pid, oldPid, 'a new supervisor process');
  await waitFor(() => !isAlive(oldPid), { what: 'the old supervisor to exit' });
  const st = await m.refresh();
  t.equal(st.pid, res.supervisor.pid, 'status comes from the new supervisor');
  t.equal(st.generation, res.generation);
  t.equal(m.adminPort, adminPort, 'the admin port moved with the service');
  t.ok(res.migrated >= 2, `connections migrated (${res.migrated})`);

  await load.progress(50);
  const ka2 = await ka.get('/after');
  t.equal(ka2.status, 200);
  t.equal(ka.sockets, 1, 'the keep-alive client kept its one connection');
  const after = metricValue(await fetchMetrics(adminPort), 'mosn_http_requests_total') ?? 0;
  t.ok(after >= before, `request counter did not go backwards (${before} -> ${after})`);
  await waitFor(async () => metricValue(await fetchMetrics(adminPort), 'mosn_reloads_total', { kind: 'upgrade', result: 'success' }) === 1, {
    what: 'the upgrade to be counted (the old supervisor passes its final counters on)',
  });

  const counts = await load.stop();
  t.equal(totalFailures(counts), 0, `no failed request: ${JSON.stringify(counts.errors)} ${counts.samples.join(' | ')}`);
  t.equal(counts.refused, 0);
  t.equal(counts.resets, 0);
  const sr = await s.finish();
  t.equal(sr.error, undefined, 'stream: no error');
  t.ok(sr.ok, 'stream: every byte in order');
  t.equal(sr.received, sr.sent, `stream: ${sr.received} of ${sr.sent} bytes back`);
});

void t.test('SIGUSR2 triggers the same handover', async (t) => {
  const { m, web } = await setup(t);
  const oldPid = m.status.pid;
  const load = startLoad({ port: web });
  t.teardown(() => load.stop());
  await load.progress(20);
  process.kill(oldPid, 'SIGUSR2');
  await waitFor(async () => (await m.refresh().catch(() => m.status)).pid !== oldPid, { timeoutMs: 15_000, what: 'a new supervisor' });
  await waitFor(() => !isAlive(oldPid), { what: 'the old supervisor to exit' });
  await load.progress(20);
  const counts = await load.stop();
  t.equal(totalFailures(counts), 0, JSON.stringify(counts.errors));
});

void t.test('SIGKILL of the new supervisor mid-handover: the old keeps serving', async (t) => {
  const { m, web } = await setup(t, { ready_timeout: '20s' });
  const oldPid = m.status.pid;
  const gen = m.status.generation;
  const dir = fakeRelease('hang');
  t.teardown(() => killMentioning(dir));
  const load = startLoad({ port: web });
  t.teardown(() => load.stop());
  await load.progress(20);
  const pending = m.ctl('upgrade', dir, '--json');
  let successor = 0;
  await waitFor(
    () => {
      successor = processesRunning(path.join(dir, 'dist/cli/mosn.js')).find((p) => p !== oldPid) ?? 0;
      return successor > 0;
    },
    { what: 'the successor supervisor to start' },
  );
  process.kill(successor, 'SIGKILL');
  const r = await pending;
  t.equal(r.exitCode, 1, 'the upgrade fails');
  t.match(r.stderr, 'rolled back');
  const st = await m.refresh();
  t.equal(st.pid, oldPid, 'the old supervisor still runs the service');
  t.equal(st.generation, gen, 'same generation');
  t.equal(st.phase, 'running');
  await load.progress(20);
  const counts = await load.stop();
  t.equal(totalFailures(counts), 0, JSON.stringify(counts.errors));
  // A later upgrade still works.
  const again = await m.ctl('upgrade', '--json');
  t.equal(again.exitCode, 0, again.stderr);
});

void t.test('runtime upgrade: Node 20 -> 22 -> back, losing nothing', async (t) => {
  const nodes = await testNodes();
  const n22 = nodes.find((n) => n.major === 22);
  if (!n22) {
    t.comment('skipped: Node 22 not available (MOSN_TEST_NODES=current)');
    return;
  }
  const { m, web, stream } = await setup(t);
  const release22 = copyRelease({ node: n22.path, version: '0.0.0-node22' });
  // The way back names its runtime too: a release's default is the Node running it.
  const release20 = copyRelease({ node: process.execPath, version: '0.0.0-node20' });
  const load = startLoad({ port: web });
  t.teardown(() => load.stop());
  const ka = new KeepAliveClient(web);
  t.teardown(() => ka.close());
  t.equal((await ka.get('/n20')).status, 200);
  const s = byteStream(stream);
  await load.progress(30);
  const r = await m.ctl('upgrade', release22, '--json');
  t.equal(r.exitCode, 0, r.stderr);
  const st = await m.refresh();
  t.equal(st['node'], n22.version, `the supervisor now runs ${n22.version}`);
  t.ok(st.generations.every((g) => (g as { node?: string }).node === n22.path), 'and so do the workers');
  t.equal((await ka.get('/n22')).status, 200);
  await load.progress(30);
  const back = await m.ctl('upgrade', release20, '--json');
  t.equal(back.exitCode, 0, back.stderr);
  t.equal((await m.refresh())['node'], process.version, 'and back');
  t.equal((await ka.get('/back')).status, 200);
  t.equal(ka.sockets, 1, 'one keep-alive connection through both runtime changes');
  const counts = await load.stop();
  t.equal(totalFailures(counts), 0, JSON.stringify(counts.errors));
  const sr = await s.finish();
  t.ok(sr.ok && sr.received === sr.sent && !sr.error, `stream byte-exact (${sr.received}/${sr.sent}, ${sr.error ?? 'no error'})`);
});
