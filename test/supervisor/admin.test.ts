// The admin endpoint: /live /ready /config_dump /status /metrics, with
// metrics aggregated across every worker and counters that never go
// backwards when a worker dies.
import t, { type Test } from 'tap';
import YAML from 'yaml';
import fs from 'node:fs';
import { get, request } from '../helpers/clients.js';
import { echoHandler, httpBackend } from '../helpers/backends.js';
import { startMosn, type MosnProcess, type Status } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

/** Sum of every sample of a metric family (all label sets). */
function total(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function requestsTotal(m: MosnProcess): Promise<number> {
  const r = await get(m.adminPort, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return total(r.body, 'mosn_http_requests_total');
}

/** Sends requests on fresh connections until every worker pid served at least `each`. */
async function driveUntilAllServed(t: Test, m: MosnProcess, pids: number[], each: number): Promise<number> {
  let sent = 0;
  const served = (pid: number): number => m.accessLogs().filter((l) => l['pid'] === pid && l['path'] === '/count').length;
  await waitFor(
    async () => {
      const r = await request({ port: m.port('web'), path: '/count', timeoutMs: 5000 });
      if (!r.ok || r.status !== 200) throw new Error(`request failed: ${r.error ?? r.status}`);
      sent++;
      return pids.every((p) => served(p) >= each);
    },
    { timeoutMs: 20_000, intervalMs: 1, what: `every worker to serve ${each} requests` },
  );
  t.comment(`sent ${sent}: ${pids.map((p) => `${p} served ${served(p)}`).join(', ')}`);
  return sent;
}

void t.test('admin endpoint', async (t) => {
  const be = await httpBackend(echoHandler('a'));
  t.teardown(() => be.close());
  const m = await startMosn({
    workers: 2,
    upgrade: { drain_timeout: '7s' },
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
      },
      { name: 'raw', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'app' },
    ],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  });
  t.teardown(() => m.kill());
  const port = m.adminPort;

  await t.test('/live and /ready answer 200 while running', async (t) => {
    const live = await get(port, '/live');
    t.equal(live.status, 200);
    t.equal(live.body, 'live\n');
    const ready = await get(port, '/ready');
    t.equal(ready.status, 200);
    t.equal(ready.body, 'ready\n');
  });

  await t.test('/config_dump is the effective config', async (t) => {
    const r = await get(port, '/config_dump');
    t.equal(r.status, 200);
    t.match(r.headers['content-type'], /^application\/json/);
    const c = JSON.parse(r.body) as Record<string, any>;
    t.same(
      (c['listeners'] as { name: string }[]).map((l) => l.name),
      ['web', 'raw'],
    );
    t.equal(c['workers'], 2);
    t.equal(c['upgrade']['drain_timeout'], 7000, 'durations in ms: normalised, not as written');
    t.equal(c['upgrade']['ready_timeout'], 10_000, 'defaults filled in');
    t.equal(c['source'], m.configFile);
    t.equal(c['control_socket'], m.socket);
    const written = YAML.parse(fs.readFileSync(m.configFile, 'utf8')) as Record<string, any>;
    t.equal(written['upgrade']['drain_timeout'], '7s');
  });

  await t.test('/status matches mosnctl status --json', async (t) => {
    const [admin, ctl] = await Promise.all([get(port, '/status'), m.ctl('status', '--json')]);
    t.equal(admin.status, 200);
    t.equal(ctl.exitCode, 0, ctl.stderr);
    const a = JSON.parse(admin.body) as Status;
    const c = JSON.parse(ctl.stdout) as Status;
    const pick = (s: Status): unknown => ({
      pid: s.pid,
      phase: s.phase,
      generation: s.generation,
      admin: s.admin,
      listeners: s.listeners,
      workers: s.generations.map((g) => ({ id: g.id, state: g.state, workers: g.workers.map((w) => [w.slot, w.pid, w.phase]) })),
      version: s['version'],
      config_file: s['config_file'],
      started_at: s['started_at'],
    });
    t.same(pick(a), pick(c));
    t.equal(a.pid, m.pid);
  });

  await t.test("/metrics has each process's resident memory, from /proc", async (t) => {
    const r = await get(port, '/metrics');
    t.equal(r.status, 200);
    t.match(r.body, /^# TYPE mosn_process_resident_memory_bytes gauge$/m);
    const samples = new Map<string, number>();
    for (const [, labels, v] of r.body.matchAll(/^mosn_process_resident_memory_bytes\{([^}]*)\} (\S+)$/gm)) samples.set(labels!, Number(v));
    const sup = samples.get('role="supervisor"');
    t.ok(sup !== undefined && sup > 10 * 2 ** 20 && sup < 2 ** 30, `supervisor: ${sup} bytes`);
    const status = await m.refresh();
    const gen = status.generations.find((g) => g.state === 'current')!;
    t.equal(samples.size, 1 + gen.workers.length, `one sample per process: ${[...samples.keys()].join(' ')}`);
    for (const w of gen.workers) {
      const v = samples.get(`role="current",generation="${gen.id}",slot="${w.slot}"`);
      const proc = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${w.pid}/status`, 'utf8'))![1]) * 1024;
      // Read a moment apart: within a factor of two of what /proc says now.
      t.ok(v !== undefined && v > proc / 2 && v < proc * 2, `worker slot ${w.slot} (pid ${w.pid}): ${v} bytes, /proc now ${proc}`);
    }
  });

  await t.test('unknown paths 404, other methods 405', async (t) => {
    const nf = await get(port, '/nope');
    t.equal(nf.status, 404);
    t.match(nf.body, /try \/metrics/);
    const post = await request({ port, path: '/ready', method: 'POST', timeoutMs: 5000 });
    t.equal(post.status, 405);
    const q = await get(port, '/live?verbose=1');
    t.equal(q.status, 200, 'query strings ignored');
  });

  await t.test('/metrics is Prometheus text with the lifecycle metrics', async (t) => {
    const r = await get(port, '/metrics');
    t.equal(r.status, 200);
    t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    t.match(r.body, /^# HELP mosn_http_requests_total /m);
    t.match(r.body, /^# TYPE mosn_http_requests_total counter$/m);
    t.match(r.body, /^mosn_supervisor_phase\{phase="running"\} 1$/m);
    t.match(r.body, /^mosn_supervisor_phase\{phase="stopping"\} 0$/m);
    t.match(r.body, /^mosn_workers\{role="current"\} 2$/m);
    t.match(r.body, /^mosn_generation 1$/m);
    for (const line of r.body.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      t.match(line, /^[a-z_:][a-z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/i, `sample line: ${line}`);
    }
  });

  await t.test('/metrics aggregates requests across both workers; counters survive a worker SIGKILL', async (t) => {
    const pids = m.workerPids();
    t.equal(pids.length, 2);
    const sent = await driveUntilAllServed(t, m, pids, 5);
    // Counted once the response has left: converge to exactly `sent`, and
    // never above it.
    await waitFor(
      async () => {
        const n = await requestsTotal(m);
        if (n > sent) throw new Error(`mosn_http_requests_total ${n} > ${sent} sent`);
        return n === sent;
      },
      { timeoutMs: 10_000, what: `mosn_http_requests_total to reach ${sent}` },
    );
    t.equal(await requestsTotal(m), sent, `the counter equals the ${sent} requests sent, summed over both workers`);

    const before = await requestsTotal(m);
    const victim = pids[0]!;
    process.kill(victim, 'SIGKILL');
    const seen: number[] = [];
    let replacement = -1;
    await waitFor(
      async () => {
        seen.push(await requestsTotal(m));
        const s = await m.refresh();
        const w = s.generations[0]?.workers.find((x) => x.pid !== pids[1]);
        if (!w || w.pid === victim || w.phase !== 'serving') return false;
        replacement = w.pid;
        return true;
      },
      { timeoutMs: 15_000, intervalMs: 5, what: 'the killed worker to be replaced' },
    );
    seen.push(await requestsTotal(m));
    t.ok(
      seen.every((n) => n >= before),
      `never below ${before} while the worker died and came back (${seen.length} reads, min ${Math.min(...seen)})`,
    );
    t.equal(seen[seen.length - 1], before, 'nothing lost: the last snapshot before the kill was kept');

    const more = await driveUntilAllServed(t, m, [replacement, pids[1]!], 3);
    await waitFor(async () => (await requestsTotal(m)) === before + more, {
      timeoutMs: 10_000,
      what: `mosn_http_requests_total to reach ${before + more}`,
    });
    t.pass(`the counter went on from ${before} to ${before + more}`);
    const text = (await get(port, '/metrics')).body;
    t.match(text, /^mosn_worker_restarts_total 1$/m);
    t.match(text, /^mosn_workers\{role="current"\} 2$/m);
  });
});
