// host:port addresses: `0.0.0.0:8080`, `localhost:80`, `[::1]:8080`.

import { isIPv4, isIPv6 } from 'node:net';
import type { HostPort } from './types.js';

export type AddressResult = { ok: true; value: HostPort } | { ok: false; error: string };

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/i;
const LOOKS_NUMERIC = /^[0-9.]+$/;

/**
 * Parses `host:port`. IPv6 literals must be bracketed; the resulting `host`
 * has no brackets, and `text` is the canonical form (lower-case, IPv6
 * compressed) used to compare addresses.
 */
export function parseHostPort(text: string, minPort: 0 | 1): AddressResult {
  const fail = (reason: string): AddressResult => ({ ok: false, error: `invalid address "${text}": ${reason}` });

  if (text.includes('://')) return fail('write host:port, without a scheme');

  let host: string;
  let portText: string;
  let v6 = false;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return fail('missing "]" after the IPv6 address');
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === '') return fail('missing port (expected [IPv6]:port)');
    if (!rest.startsWith(':')) return fail('expected ":port" after "]"');
    portText = rest.slice(1);
    if (!isIPv6(host)) return fail(`"${host}" is not a valid IPv6 address`);
    host = canonicalIPv6(host);
    v6 = true;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail('missing port (expected host:port)');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return fail('IPv6 addresses must be in brackets, e.g. [::1]:8080');
    if (host === '') return fail('missing host (use 0.0.0.0 or [::] for every address)');
    if (LOOKS_NUMERIC.test(host) && !isIPv4(host)) return fail(`"${host}" is not a valid IPv4 address`);
    if (!isIPv4(host) && !HOST_NAME.test(host)) return fail(`"${host}" is not a valid host name or IP address`);
    host = host.toLowerCase();
  }

  if (portText === '') return fail('missing port number');
  if (!/^[0-9]+$/.test(portText)) return fail(`port "${portText}" is not a number`);
  const port = Number(portText);
  if (port < minPort || port > 65535) return fail(`port ${port} is out of range (${minPort}-65535)`);

  return { ok: true, value: { host, port, text: v6 ? `[${host}]:${port}` : `${host}:${port}` } };
}

function canonicalIPv6(host: string): string {
  try {
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host.toLowerCase(); // e.g. a zone id ("fe80::1%eth0"), which URL rejects
  }
}
