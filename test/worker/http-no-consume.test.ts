// The HTTP engine's fallback path: parsers fed from socket 'data' events
// instead of reading sockets themselves (parser.consume). It is what runs on
// a Node.js without consume, and what MOSN_NO_PARSER_CONSUME=1 forces. The
// downstream, proxy, big-body, upstream-pool and write-coalescing tests run
// again here with it forced, in this process (the in-process upstream pool
// and HTTP engine) and in every mosn process they start (the environment is
// inherited).
import t from 'tap';
import { httpBackend } from '../helpers/backends.js';
import { startMosn } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

process.env['MOSN_NO_PARSER_CONSUME'] = '1';

void t.test('the fallback is in effect', async (t) => {
  const { detectInternals } = await import('../../src/common/node-internals.js');
  const r = detectInternals();
  t.ok(r.httpParser, 'the native parser is there');
  t.equal(r.parserConsume, false, 'consume is off in this process');
  const backend = await httpBackend((_req, res) => res.end('ok'));
  t.teardown(() => backend.close());
  const m = await startMosn({
    workers: 1,
    listeners: [{ name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
    clusters: [{ name: 'app', endpoints: [`127.0.0.1:${backend.port}`] }],
  });
  t.teardown(() => m.kill());
  await waitFor(() => m.logs().some((l) => String(l['msg']).startsWith('HTTP parsers are fed from socket data events')), {
    timeoutMs: 5000,
    what: 'the worker to log that parsers are fed from data events',
  });
  t.pass('the worker runs without consume');
});

await import('./http-downstream.test.js');
await import('./http-proxy.test.js');
await import('./big-body.test.js');
await import('./upstream-pool.test.js');
await import('./write-coalescing.test.js');
