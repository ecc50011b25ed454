// One idle keep-alive connection served by >= 5 successive generations on
// the same TCP connection, with zero errors.
import http from 'node:http';
import t from 'tap';
import { startMosn } from '../helpers/mosn.js';
import { testNodes } from '../helpers/nodes.js';
import { httpBackend, echoHandler } from '../helpers/backends.js';

function get(agent: http.Agent, port: number, path: string): Promise<{ status: number; localPort: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, localPort: req.socket?.localPort ?? -1, body }));
    });
    req.on('error', reject);
  });
}

for (const node of await testNodes()) {
  void t.test(`an idle keep-alive connection is served by 6 generations (node ${node.version})`, async (t) => {
  const be = await httpBackend(echoHandler('a'));
  t.teardown(() => be.close());
  const m = await startMosn({
    listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  }, { node: node.path });
  t.teardown(() => m.kill());
  const port = m.port('web');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  let sockets = 0;
  const origCreate = agent.createConnection.bind(agent);
  agent.createConnection = (...args: Parameters<typeof origCreate>) => {
    sockets++;
    return origCreate(...args);
  };

  const first = await get(agent, port, '/g0');
  t.equal(first.status, 200);
  const servedBy = new Set<number>();
  for (let round = 1; round <= 5; round++) {
    const r = await m.ctl('reload', '--json');
    t.equal(r.exitCode, 0, `reload ${round}: ${r.stderr}`);
    const result = JSON.parse(r.stdout) as { generation: number; migrated: number; old_generation_exited: boolean };
    t.equal(result.generation, round + 1);
    t.ok(result.migrated >= 1, `reload ${round} migrated ${result.migrated}`);
    const res = await get(agent, port, `/g${round}`);
    t.equal(res.status, 200);
    t.equal(res.localPort, first.localPort, 'same TCP connection');
    const line = await m.accessLine(`/g${round}`);
    t.ok(line, 'access log line');
    t.equal(line['generation'], round + 1, 'served by the new generation');
    servedBy.add(Number(line['generation']));
  }
  t.equal(sockets, 1, 'the client opened exactly one connection');
  t.equal(servedBy.size, 5);
});
}
