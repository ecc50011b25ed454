// Worker processes run with the supervisor's default Node flags plus
// MOSN_WORKER_NODE_ARGS (later flags win), as the README says.
import fs from 'node:fs';
import t from 'tap';
import { httpBackend, echoHandler } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';

void t.test('workers get --max-semi-space-size=4, then MOSN_WORKER_NODE_ARGS', async (t) => {
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
    t.same(flags, ['--max-semi-space-size=4', '--stack-size=2000', '--max-semi-space-size=8'], `worker ${pid}: ${flags.join(' ')}`);
  }
});
