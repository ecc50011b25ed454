// Header handling for the HTTP proxy: hop-by-hop removal (RFC 9110 7.6.1)
// and the X-Forwarded-* family. Works on Node's rawHeaders (flat
// [name, value, ...] arrays) so names keep their case and repeated headers
// stay repeated.

// Per request these run over every header of both directions, so names are
// compared in place (nameIs) rather than lower-cased (an allocation, and a
// hash for every Set lookup: ~5 % of a worker's instructions measured).

/** `name` equals `lower` (a lower-case header name) ignoring ASCII case; allocates nothing. */
export function nameIs(name: string, lower: string): boolean {
  const n = lower.length;
  if (name.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(c >= 65 && c <= 90 && c + 32 === l)) return false;
  }
  return true;
}

/** Always hop-by-hop (RFC 9110 7.6.1), by name length. */
function alwaysHopByHop(name: string): boolean {
  switch (name.length) {
    case 2: return nameIs(name, 'te');
    case 7: return nameIs(name, 'trailer') || nameIs(name, 'upgrade');
    case 10: return nameIs(name, 'connection') || nameIs(name, 'keep-alive');
    case 16: return nameIs(name, 'proxy-connection');
    case 17: return nameIs(name, 'transfer-encoding');
    default: return false;
  }
}

/** Header names a `Connection` header lists beyond the always-hop-by-hop ones (lower case), if any. */
export function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (!nameIs(raw[i]!, 'connection')) continue;
    const value = raw[i + 1]!;
    // Mostly one token (keep-alive, close, upgrade): no split then.
    if (!value.includes(',')) tokens = addToken(tokens, value);
    else for (const t of value.split(',')) tokens = addToken(tokens, t);
  }
  return tokens;
}

function addToken(tokens: Set<string> | undefined, token: string): Set<string> | undefined {
  const name = token.trim();
  if (name === '' || alwaysHopByHop(name) || nameIs(name, 'close')) return tokens;
  return (tokens ?? new Set()).add(name.toLowerCase());
}

/** `name` is hop-by-hop: always, or listed in the message's `Connection` header (`extra`, from connectionTokens). */
export function isHopByHop(name: string, extra: ReadonlySet<string> | undefined): boolean {
  return alwaysHopByHop(name) || (extra !== undefined && extra.has(name.toLowerCase()));
}

export interface ForwardedInfo {
  readonly clientIp: string;
  readonly proto: 'http' | 'https';
  readonly host: string | undefined;
}

/**
 * Request headers for the upstream: hop-by-hop and Expect removed,
 * X-Forwarded-For appended to, X-Forwarded-Proto and -Host set (kept when
 * already present for -Host), Host optionally rewritten. `keep` names
 * (lower case) hop-by-hop headers to keep anyway (the Upgrade handshake
 * keeps `upgrade` and `connection`).
 */
export function upstreamRequestHeaders(raw: readonly string[], fwd: ForwardedInfo, hostRewrite: string | undefined, keep?: ReadonlySet<string>): string[] {
  // One pass: no stripped copy to walk again.
  const extra = connectionTokens(raw);
  const out: string[] = [];
  let xff: string | undefined;
  let haveXfHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isHopByHop(name, extra) && !keep?.has(name.toLowerCase())) continue;
    let value = raw[i + 1]!;
    switch (name.length) {
      case 15:
        if (nameIs(name, 'x-forwarded-for')) {
          xff = xff === undefined ? value : `${xff}, ${value}`;
          continue;
        }
        break;
      case 17:
        if (nameIs(name, 'x-forwarded-proto')) continue;
        break;
      case 6:
        // Expect: 100-continue was answered by the downstream server already;
        // forwarding it would make the upstream wait for a continue nobody sends.
        if (nameIs(name, 'expect')) continue;
        break;
      case 16:
        if (nameIs(name, 'x-forwarded-host')) haveXfHost = true;
        break;
      case 4:
        if (hostRewrite !== undefined && nameIs(name, 'host')) value = hostRewrite;
        break;
    }
    out.push(name, value);
  }
  out.push('x-forwarded-for', xff === undefined ? fwd.clientIp : `${xff}, ${fwd.clientIp}`);
  out.push('x-forwarded-proto', fwd.proto);
  if (!haveXfHost && fwd.host !== undefined) out.push('x-forwarded-host', fwd.host);
  return out;
}

export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
