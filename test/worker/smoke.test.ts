import t from 'tap';
import { startMosn } from '../helpers/mosn.js';
import { httpBackend, echoHandler } from '../helpers/backends.js';

t.test('proxies a GET and serves a direct response', async (t) => {
  const be = await httpBackend(echoHandler('a'));
  t.teardown(() => be.close());
  const m = await startMosn({
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [
          {
            name: 'vh',
            domains: ['*'],
            routes: [
              { match: { path: '/hello' }, direct_response: { status: 200, body: 'hi' } },
              { match: { prefix: '/' }, route: { cluster: 'app' } },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: 'app', endpoints: [be.address] }],
  });
  t.teardown(() => m.kill());
  const base = `http://127.0.0.1:${m.port('web')}`;
  const r1 = await fetch(`${base}/hello`);
  t.equal(r1.status, 200);
  t.equal(await r1.text(), 'hi');
  const r2 = await fetch(`${base}/x?y=1`);
  t.equal(r2.status, 200);
  const body = (await r2.json()) as { url: string; headers: Record<string, string> };
  t.equal(body.url, '/x?y=1');
  t.equal(body.headers['x-forwarded-for'], '127.0.0.1');
  t.equal(body.headers['x-forwarded-proto'], 'http');
});
