// Header name handling without lower-casing: case-insensitive matches,
// hop-by-hop removal (fixed names and those `Connection` lists), and the
// X-Forwarded-* family, on flat [name, value, ...] lists.
import t from 'tap';
import { nameIs, stripHopByHop, upstreamRequestHeaders } from '../../src/worker/http/headers.js';

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

void t.test('stripHopByHop drops fixed and Connection-listed names in any case, keeps the rest in order', async (t) => {
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
  t.strictSame(stripHopByHop(raw), ['Host', 'a', 'X-Public', 'ok', 'Close', 'not a hop-by-hop header name, so it stays']);
  t.strictSame(stripHopByHop(raw, new Set(['upgrade', 'connection'])), [
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
