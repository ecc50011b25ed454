// Header name handling without lower-casing: case-insensitive matches,
// hop-by-hop removal (fixed names and those `Connection` lists), and the
// X-Forwarded-* family, on flat [name, value, ...] lists.
import t from 'tap';
import { nameIs, upstreamRequestHeaders } from '../../src/worker/http/headers.js';

void t.test('nameIs compares ASCII case-insensitively and nothing else', async (t) => {
  t.ok(nameIs('Content-Length', 'content-length'));
  t.ok(nameIs('CONTENT-LENGTH', 'content-length'));
  t.ok(nameIs('host', 'host'));
  t.notOk(nameIs('hos', 'host'), 'length differs');
  t.notOk(nameIs('Content_Length', 'content-length'), '_ is not -');
  t.notOk(nameIs('Hosu', 'host'));
  // Only A-Z fold: '@' | 0x20 is '`', '\r' | 0x20 is '-'.
  t.notOk(nameIs('@', '`'));
  t.notOk(nameIs('a\rb', 'a-b'));
});

/** The request headers for the upstream, without the four X-Forwarded-* entries it appends (no host given: no X-Forwarded-Host). */
const stripped = (raw: string[], keep?: ReadonlySet<string>): string[] => upstreamRequestHeaders(raw, { clientIp: 'c', proto: 'http', host: undefined }, undefined, keep).slice(0, -4);

void t.test('hop-by-hop headers: fixed and Connection-listed names dropped in any case, the rest kept in order', async (t) => {
  const raw = [
    'Host', 'a',
    'CONNECTION', 'Keep-Alive, X-Private , close',
    'keep-alive', 'timeout=5',
    'TE', 'trailers',
    'Trailer', 'x',
    'Transfer-Encoding', 'chunked',
    'Upgrade', 'h2c',
    'Proxy-Connection', 'keep-alive',
    'x-private', 'secret',
    'X-Public', 'ok',
    'Close', 'not a hop-by-hop header name, so it stays',
  ];
  t.strictSame(stripped(raw), ['Host', 'a', 'X-Public', 'ok', 'Close', 'not a hop-by-hop header name, so it stays']);
  t.strictSame(stripped(raw, new Set(['upgrade', 'connection'])), [
    'Host', 'a',
    'CONNECTION', 'Keep-Alive, X-Private , close',
    'Upgrade', 'h2c',
    'X-Public', 'ok',
    'Close', 'not a hop-by-hop header name, so it stays',
  ]);
});

void t.test('upstreamRequestHeaders: X-Forwarded-* in any case, Expect dropped, Host rewritten', async (t) => {
  const raw = ['HOST', 'example.test', 'X-FORWARDED-FOR', '10.0.0.1', 'x-forwarded-proto', 'https', 'EXPECT', '100-continue', 'X-Forwarded-Host', 'orig.test', 'Accept', '*/*'];
  t.strictSame(upstreamRequestHeaders(raw, { clientIp: '127.0.0.1', proto: 'http', host: 'example.test' }, 'backend.test'), [
    'HOST', 'backend.test',
    'X-Forwarded-Host', 'orig.test',
    'Accept', '*/*',
    'x-forwarded-for', '10.0.0.1, 127.0.0.1',
    'x-forwarded-proto', 'http',
  ]);
});

void t.test('upstreamRequestHeaders: repeated X-Forwarded-For joined in order, Connection-listed and hop-by-hop names dropped', async (t) => {
  const raw = ['Host', 'a.test', 'X-Forwarded-For', '1.1.1.1', 'Connection', 'keep-alive, X-Drop', 'X-Drop', 'v', 'x-forwarded-for', '2.2.2.2, 3.3.3.3', 'Keep-Alive', '5', 'Accept', '*/*'];
  t.strictSame(upstreamRequestHeaders(raw, { clientIp: '127.0.0.1', proto: 'http', host: 'a.test' }, undefined), [
    'Host', 'a.test',
    'Accept', '*/*',
    'x-forwarded-for', '1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1',
    'x-forwarded-proto', 'http',
    'x-forwarded-host', 'a.test',
  ]);
  // The Upgrade handshake keeps its two hop-by-hop headers.
  const up = ['Host', 'a.test', 'Connection', 'Upgrade', 'Upgrade', 'websocket'];
  t.strictSame(upstreamRequestHeaders(up, { clientIp: '127.0.0.1', proto: 'http', host: undefined }, undefined, new Set(['upgrade', 'connection'])), [
    'Host', 'a.test',
    'Connection', 'Upgrade',
    'Upgrade', 'websocket',
    'x-forwarded-for', '127.0.0.1',
    'x-forwarded-proto', 'http',
  ]);
});
