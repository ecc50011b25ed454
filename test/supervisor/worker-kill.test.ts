// A worker SIGKILLed under load: no connection is refused, nothing fails
// except the exchanges that were on the killed worker's own connections, and
// the worker is replaced.
//
// The listening sockets are shared by the supervisor and every worker, so a
// connection still in the kernel's accept queue survives any one worker's
// death. What dies with a worker is what it had accepted. To tell those
// apart exactly, the victim is frozen (SIGSTOP) the instant before the kill
// and the client ports of the connections it holds are read from /proc;
// every failed request must be on one of those ports. The kill itself is a
// plain SIGKILL.
import http from 'node:http';
import t from 'tap';
import { acceptedPorts, procState, request, type Outcome } from '../helpers/clients.js';
import { echoHandler, httpBackend } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

const NEW_CONNECTION_LOOPS = 4;
const KEEP_ALIVE_LOOPS = 2;

interface Record_ {
  readonly kind: 'new' | 'keepalive';
  readonly outcome: Outcome;
}

void t.test('worker SIGKILLed under load: nothing refused, only its own connections lost, replaced', async (t) => {
  const be = await httpBackend(echoHandler('a'));
  t.teardown(() => be.close());
  const m = await startMosn({
    workers: 2,
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
      },
    ],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  });
  t.teardown(() => m.kill());
  const port = m.port('web');
  const slot0 = m.status.generations[0]!.workers.find((w) => w.slot === 0)!;
  const victim = slot0.pid;

  const records: Record_[] = [];
  let stop = false;
  const loop = async (kind: Record_['kind']): Promise<void> => {
    const agent = kind === 'keepalive' ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : undefined;
    try {
      while (!stop) {
        const outcome = await request({ port, path: `/${kind}`, agent, timeoutMs: 10_000 });
        records.push({ kind, outcome });
      }
    } finally {
      agent?.destroy();
    }
  };
  const loops = [
    ...Array.from({ length: NEW_CONNECTION_LOOPS }, () => loop('new')),
    ...Array.from({ length: KEEP_ALIVE_LOOPS }, () => loop('keepalive')),
  ];
  const okCount = (): number => records.filter((r) => r.outcome.ok).length;

  // Load is flowing and the victim is taking part in it.
  await waitFor(() => okCount() >= 300 && m.accessLogs().some((l) => l['pid'] === victim), { timeoutMs: 20_000, what: 'load through both workers' });

  // Everything that completed before the victim was frozen must have worked.
  const beforeStop = records.length;
  process.kill(victim, 'SIGSTOP');
  await waitFor(() => procState(victim) === 'T', { timeoutMs: 5000, what: 'victim to stop' });
  const held = acceptedPorts(victim, port);
  process.kill(victim, 'SIGKILL');
  const killedAt = records.length;

  // Replaced: a new pid in slot 0, serving.
  let replacement = -1;
  await waitFor(
    async () => {
      const s = await m.refresh();
      const w = s.generations[0]?.workers.find((x) => x.slot === 0);
      if (!w || w.pid === victim || w.phase !== 'serving') return false;
      replacement = w.pid;
      return true;
    },
    { timeoutMs: 15_000, what: 'slot 0 to be replaced and serving' },
  );
  // Keep the load on until the replacement has served its share.
  await waitFor(() => records.length >= killedAt + 300 && m.accessLogs().some((l) => l['pid'] === replacement), {
    timeoutMs: 20_000,
    what: 'load through the replacement worker',
  });
  stop = true;
  await Promise.all(loops);

  const failed = records.filter((r) => !r.outcome.ok);
  const refused = failed.filter((r) => r.outcome.error === 'ECONNREFUSED');
  const notOnVictim = failed.filter((r) => r.outcome.localPort === undefined || !held.has(r.outcome.localPort));
  const describe = (rs: Record_[]): string => rs.map((r) => `${r.kind}:${r.outcome.error}@${r.outcome.localPort ?? '-'}`).join(', ');
  t.comment(
    `requests ${records.length}, failed ${failed.length} (${describe(failed)}); victim held ${held.size} connection(s) [${[...held].join(',')}]`,
  );
  t.ok(records.length >= 600, `load ran (${records.length} requests)`);
  t.equal(refused.length, 0, 'no connection refused');
  t.equal(notOnVictim.length, 0, `every failure was on a connection the killed worker held: ${describe(notOnVictim)}`);
  t.ok(failed.length <= held.size, `at most one failure per held connection (${failed.length} <= ${held.size})`);
  t.equal(new Set(failed.map((r) => r.outcome.localPort)).size, failed.length, 'no held connection failed twice');
  t.equal(records.slice(0, beforeStop).filter((r) => !r.outcome.ok).length, 0, 'no failure before the kill');
  t.ok(records.filter((r) => r.kind === 'new' && r.outcome.ok && r.outcome.status === 200).length > 0, 'new-connection requests succeeded');
  t.ok(
    records.every((r) => !r.outcome.ok || r.outcome.status === 200),
    'every completed request was a 200',
  );

  const died = m.logs().find((l) => l['msg'] === 'worker died unexpectedly; restarting' && l['worker_pid'] === victim);
  t.ok(died, 'the supervisor logged the unexpected exit');
  t.equal(died?.['signal'], 'SIGKILL', 'with the signal');
  t.equal(died?.['slot'], 0, 'and the slot');
  t.equal(typeof died?.['restart_in_ms'], 'number', 'and the restart delay');
  t.equal(died?.['level'], 'error', 'at level error');
});
