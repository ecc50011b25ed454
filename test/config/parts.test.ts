// The small pieces: durations, addresses, "did you mean" hints.

import t from 'tap';
import { MAX_DURATION_MS, parseDuration, parseHostPort } from '../../src/config/index.js';
import { closest, didYouMean, editDistance } from '../../src/config/suggest.js';

void t.test('parseDuration', async (t) => {
  t.equal(parseDuration('250ms'), 250);
  t.equal(parseDuration('0s'), 0);
  t.equal(parseDuration('1.5s'), 1_500);
  t.equal(parseDuration('0.5ms'), 1, 'rounded to whole milliseconds');
  t.equal(parseDuration('2m'), 120_000);
  t.equal(parseDuration('1h30m'), 5_400_000);
  t.equal(parseDuration(42), 42);
  t.equal(MAX_DURATION_MS, 2_147_483_647);
  for (const bad of ['', '10', '10 s', '-1s', '1d', 's', '1.s', '.5s', 'ms', -1, 1.5, null, true]) {
    t.equal(parseDuration(bad), undefined, `${JSON.stringify(bad)} is not a duration`);
  }
});

void t.test('parseHostPort: good addresses', async (t) => {
  const ok = (text: string, minPort: 0 | 1 = 0) => {
    const r = parseHostPort(text, minPort);
    return r.ok ? r.value : r.error;
  };
  t.strictSame(ok('0.0.0.0:8080'), { host: '0.0.0.0', port: 8080, text: '0.0.0.0:8080' });
  t.strictSame(ok('[::1]:8080'), { host: '::1', port: 8080, text: '[::1]:8080' });
  t.strictSame(ok('[0:0:0:0:0:0:0:1]:80'), { host: '::1', port: 80, text: '[::1]:80' }, 'IPv6 is compressed');
  t.strictSame(ok('[2001:DB8::A]:443'), { host: '2001:db8::a', port: 443, text: '[2001:db8::a]:443' }, 'and lower-cased');
  t.strictSame(ok('LocalHost:65535'), { host: 'localhost', port: 65535, text: 'localhost:65535' });
  t.strictSame(ok('db-1.internal_net.example:5432'), { host: 'db-1.internal_net.example', port: 5432, text: 'db-1.internal_net.example:5432' });
  t.strictSame(ok('127.0.0.1:0'), { host: '127.0.0.1', port: 0, text: '127.0.0.1:0' });
});

void t.test('parseHostPort: bad addresses', async (t) => {
  const error = (text: string, minPort: 0 | 1 = 0) => {
    const r = parseHostPort(text, minPort);
    return r.ok ? 'accepted' : r.error;
  };
  t.equal(error('localhost'), 'invalid address "localhost": missing port (expected host:port)');
  t.equal(error('localhost:'), 'invalid address "localhost:": missing port number');
  t.equal(error('localhost:-1'), 'invalid address "localhost:-1": port "-1" is not a number');
  t.equal(error('localhost:65536'), 'invalid address "localhost:65536": port 65536 is out of range (0-65535)');
  t.equal(error('localhost:0', 1), 'invalid address "localhost:0": port 0 is out of range (1-65535)');
  t.equal(error(':80'), 'invalid address ":80": missing host (use 0.0.0.0 or [::] for every address)');
  t.equal(error('::1:80'), 'invalid address "::1:80": IPv6 addresses must be in brackets, e.g. [::1]:8080');
  t.equal(error('[::1]'), 'invalid address "[::1]": missing port (expected [IPv6]:port)');
  t.equal(error('[::1'), 'invalid address "[::1": missing "]" after the IPv6 address');
  t.equal(error('[::1]80'), 'invalid address "[::1]80": expected ":port" after "]"');
  t.equal(error('[127.0.0.1]:80'), 'invalid address "[127.0.0.1]:80": "127.0.0.1" is not a valid IPv6 address');
  t.equal(error('256.0.0.1:80'), 'invalid address "256.0.0.1:80": "256.0.0.1" is not a valid IPv4 address');
  t.equal(error('-bad-.example:80'), 'invalid address "-bad-.example:80": "-bad-.example" is not a valid host name or IP address');
  t.equal(error('http://x:80'), 'invalid address "http://x:80": write host:port, without a scheme');
});

void t.test('editDistance and suggestions', async (t) => {
  t.equal(editDistance('adress', 'address'), 1);
  t.equal(editDistance('nmae', 'name'), 1, 'a transposition costs 1');
  t.equal(editDistance('', 'abc'), 3);
  t.equal(editDistance('same', 'same'), 0);
  t.equal(closest('adress', ['name', 'address', 'protocol']), 'address');
  t.equal(closest('Address', ['address']), 'address', 'case-insensitive');
  t.equal(closest('x', ['lb']), undefined, 'short words need a close match');
  t.equal(closest('endpoint', ['endpoints', 'lb']), 'endpoints');
  t.equal(closest('banana', ['address', 'name']), undefined);
  t.equal(didYouMean('roundrobin', ['round_robin', 'random']), ' (did you mean "round_robin"?)');
  t.equal(didYouMean('zzz', ['round_robin']), '');
});
