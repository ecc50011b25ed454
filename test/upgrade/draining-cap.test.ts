// upgrade.max_draining_generations: past the cap, the oldest draining
// generation is closed (its remaining connections force-closed and counted).
import http from 'node:http';
import t from 'tap';
import { httpBackend } from '../helpers/backends.js';
import { fetchMetrics, metricValue } from '../helpers/http.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

void t.test('the oldest draining generation is closed past max_draining_generations', async (t) => {
  // /hang never answers: a request there keeps its generation draining.
  const be = await httpBackend((req, res) => {
    if (req.url === '/hang') return;
    res.end('ok');
  });
  t.teardown(() => be.close());
  const m = await startMosn({
    workers: 1,
    upgrade: { ready_timeout: '10s', drain_timeout: '60s', max_draining_generations: 1 },
    listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app', timeout: '0s' } }] }] }],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  });
  t.teardown(() => m.kill());
  const port = m.port('web');
  const hung: { err?: string; done: boolean }[] = [];
  const hang = async (): Promise<void> => {
    const h = { done: false } as { err?: string; done: boolean };
    hung.push(h);
    const req = http.get({ host: '127.0.0.1', port, path: '/hang', agent: false });
    req.on('error', (e: NodeJS.ErrnoException) => {
      h.err = e.code ?? e.message;
      h.done = true;
    });
    req.on('response', () => (h.done = true));
    await waitFor(async () => ((await m.refresh()).connections['in_request'] ?? 0) >= hung.length, { what: 'the hanging request to be in flight' });
  };

  await hang(); // held by generation 1
  t.equal((await m.ctl('reload')).exitCode, 0);
  await hang(); // held by generation 2
  let st = await m.refresh();
  t.same(st.generations.map((g) => [g.id, g.state]), [[2, 'current'], [1, 'draining']], 'one draining generation: within the cap');
  t.equal((await m.ctl('reload')).exitCode, 0);
  st = await m.refresh();
  t.same(st.generations.map((g) => [g.id, g.state]), [[3, 'current'], [2, 'draining']], 'generation 1 was closed to stay within the cap');
  await waitFor(() => hung[0]!.done, { what: "generation 1's hanging request to be cut" });
  t.ok(hung[0]!.err, `the oldest generation's request was cut (${hung[0]!.err ?? ''})`);
  t.notOk(hung[1]!.done, "generation 2's request is still in flight");
  await waitFor(async () => (metricValue(await fetchMetrics(m.adminPort), 'mosn_connections_force_closed_total') ?? 0) >= 1, {
    what: 'the cut to be counted as force-closed',
  });
});
