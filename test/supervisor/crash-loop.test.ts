// A worker slot that keeps dying: restarts back off (250 ms doubling) and,
// once five exits fall within a minute, the supervisor logs
// MOSN_ERR_WORKER_CRASH_LOOP once (rate-limited), not on every exit.
import t from 'tap';
import { get } from '../helpers/clients.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

const KILLS = 6;

void t.test('repeated SIGKILL of one slot: growing restart delays, one crash-loop line', async (t) => {
  const m = await startMosn({
    workers: 2,
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'ok' } }] }],
      },
    ],
  });
  t.teardown(() => m.kill());
  const slot1 = m.status.generations[0]!.workers.find((w) => w.slot === 1)!.pid;
  const killed: number[] = [];
  let victim = m.status.generations[0]!.workers.find((w) => w.slot === 0)!.pid;
  for (let i = 0; i < KILLS; i++) {
    process.kill(victim, 'SIGKILL');
    killed.push(victim);
    if (i === KILLS - 1) break;
    const dead = victim;
    await waitFor(
      async () => {
        const w = (await m.refresh()).generations[0]?.workers.find((x) => x.slot === 0);
        if (!w || w.pid === dead || w.phase !== 'serving') return false;
        victim = w.pid;
        return true;
      },
      { timeoutMs: 15_000, what: `slot 0 to come back after kill ${i + 1}` },
    );
  }
  // The last exit is logged too.
  await waitFor(() => m.logs().filter((l) => l['msg'] === 'worker died unexpectedly; restarting').length === KILLS, {
    timeoutMs: 5000,
    what: 'every exit to be logged',
  });

  const logs = m.logs();
  const deaths = logs.filter((l) => l['msg'] === 'worker died unexpectedly; restarting');
  t.same(
    deaths.map((l) => l['worker_pid']),
    killed,
    'each killed worker logged once, in order',
  );
  t.ok(deaths.every((l) => l['slot'] === 0 && l['signal'] === 'SIGKILL'), 'all in slot 0, by SIGKILL');
  const delays = deaths.map((l) => l['restart_in_ms'] as number);
  t.same(delays, [250, 500, 1000, 2000, 4000, 8000], `restart delays double (${delays.join(', ')})`);

  // The delay is honoured: each respawn comes no sooner than announced.
  const spawns = logs.filter((l) => l['msg'] === 'worker spawned' && l['slot'] === 0);
  for (let i = 0; i < KILLS - 1; i++) {
    const died = Date.parse(deaths[i]!['time'] as string);
    const next = spawns.find((s) => Date.parse(s['time'] as string) >= died);
    t.ok(next, `a respawn after exit ${i + 1}`);
    const waited = Date.parse(next!['time'] as string) - died;
    t.ok(waited >= delays[i]! - 5, `respawn ${i + 1} waited ${waited} ms >= ${delays[i]} ms`);
  }

  const loops = logs.filter((l) => l['code'] === 'MOSN_ERR_WORKER_CRASH_LOOP');
  t.equal(loops.length, 1, 'the crash loop is reported once, not on every exit');
  const loop = loops[0]!;
  t.equal(loop['level'], 'fatal');
  t.equal(loop['exits'], 5, 'at the fifth exit in the window');
  t.equal(loop['next_restart_ms'], 4000);
  // (Line order is not checked: pino flushes a fatal line synchronously, so
  // it can overtake the error line written just before it.)
  t.equal(deaths.length, KILLS, 'a sixth exit came after it and was not reported again');

  // The other slot was never touched and the service kept running.
  const s = await m.refresh();
  t.equal(s.phase, 'running');
  t.equal(s.generations[0]!.workers.find((w) => w.slot === 1)!.pid, slot1, 'slot 1 untouched');
  t.equal((await get(m.port('web'), '/')).body, 'ok', 'still serving');
  const metrics = (await get(m.adminPort, '/metrics')).body;
  t.match(metrics, new RegExp(`^mosn_worker_restarts_total ${KILLS}$`, 'm'), 'mosn_worker_restarts_total counts every restart');
});
