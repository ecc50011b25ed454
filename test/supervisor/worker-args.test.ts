// Worker processes run with the supervisor's default Node flags plus
// MOSN_WORKER_NODE_ARGS (later flags win), and with glibc's trim threshold
// raised unless the operator set one, as the README says.
import fs from 'node:fs';
import t from 'tap';
import { httpBackend, echoHandler } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { WORKER_MALLOC_TRIM_THRESHOLD } from '../../src/supervisor/worker-process.js';

void t.test('workers get --max-semi-space-size=4 and --no-allocation-site-pretenuring, then MOSN_WORKER_NODE_ARGS', async (t) => {
  const be = await httpBackend(echoHandler('a'));
  t.teardown(() => be.close());
  const m = await startMosn(
    {
      workers: 2,
      listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
      clusters: [{ name: 'app', endpoints: [be.address] }],
    },
    { env: { MOSN_WORKER_NODE_ARGS: ' --stack-size=2000  --max-semi-space-size=8 ' } },
  );
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  t.equal(pids.length, 2);
  for (const pid of pids) {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const flags = argv.filter((a) => a.startsWith('--'));
    t.same(flags, ['--max-semi-space-size=4', '--no-allocation-site-pretenuring', '--stack-size=2000', '--max-semi-space-size=8'], `worker ${pid}: ${flags.join(' ')}`);
  }
});

const environ = (pid: number): Map<string, string> =>
  new Map(
    fs
      .readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );

const oneRoute = (address: string) => ({
  workers: 1,
  listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
  clusters: [{ name: 'app', endpoints: [address] }],
});

void t.test("workers keep glibc's free heap (MALLOC_TRIM_THRESHOLD_) unless the operator set it", async (t) => {
  const be = await httpBackend(echoHandler('a'));
  t.teardown(() => be.close());
  const cases: [string, Record<string, string>, string | undefined][] = [
    ['default', {}, String(WORKER_MALLOC_TRIM_THRESHOLD)],
    ['MALLOC_TRIM_THRESHOLD_ set', { MALLOC_TRIM_THRESHOLD_: '1048576' }, '1048576'],
    ['GLIBC_TUNABLES set', { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=2097152' }, undefined],
  ];
  for (const [name, env, want] of cases) {
    const m = await startMosn(oneRoute(be.address), { env });
    try {
      const [pid] = m.workerPids();
      const e = environ(pid!);
      t.equal(e.get('MALLOC_TRIM_THRESHOLD_'), want, `${name}: MALLOC_TRIM_THRESHOLD_`);
      t.equal(e.get('MOSN_ROLE'), 'worker', `${name}: MOSN_ROLE`);
      if (env['GLIBC_TUNABLES']) t.equal(e.get('GLIBC_TUNABLES'), env['GLIBC_TUNABLES'], `${name}: GLIBC_TUNABLES passed on`);
      t.equal(environ(m.pid).get('MALLOC_TRIM_THRESHOLD_'), env['MALLOC_TRIM_THRESHOLD_'], `${name}: the supervisor's own environment is unchanged`);
    } finally {
      await m.kill();
    }
  }
});
