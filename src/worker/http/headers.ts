// Header handling for the HTTP proxy: hop-by-hop removal (RFC 9110 7.6.1)
// and the X-Forwarded-* family. Works on Node's rawHeaders (flat
// [name, value, ...] arrays) so names keep their case and repeated headers
// stay repeated.

/** Always hop-by-hop, plus whatever `Connection` names. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      for (const t of raw[i + 1]!.split(',')) {
        const name = t.trim().toLowerCase();
        if (name !== '') (tokens ??= new Set()).add(name);
      }
    }
  }
  return tokens;
}

/**
 * Copies `raw` without hop-by-hop headers. `keep` names hop-by-hop headers to
 * keep anyway (the Upgrade handshake keeps `upgrade` and `connection`).
 */
export function stripHopByHop(raw: readonly string[], keep?: ReadonlySet<string>): string[] {
  const extra = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if ((HOP_BY_HOP.has(lower) || extra?.has(lower)) && !keep?.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

export interface ForwardedInfo {
  readonly clientIp: string;
  readonly proto: 'http' | 'https';
  readonly host: string | undefined;
}

/**
 * Request headers for the upstream: hop-by-hop and Expect removed,
 * X-Forwarded-For appended to, X-Forwarded-Proto and -Host set (kept when
 * already present for -Host), Host optionally rewritten.
 */
export function upstreamRequestHeaders(raw: readonly string[], fwd: ForwardedInfo, hostRewrite: string | undefined, keep?: ReadonlySet<string>): string[] {
  const out = stripHopByHop(raw, keep);
  let xff: string | undefined;
  let haveXfHost = false;
  for (let i = out.length - 2; i >= 0; i -= 2) {
    const lower = out[i]!.toLowerCase();
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? out[i + 1]! : `${out[i + 1]!}, ${xff}`;
      out.splice(i, 2);
    } else if (lower === 'x-forwarded-proto' || lower === 'expect') {
      // Expect: 100-continue was answered by the downstream server already;
      // forwarding it would make the upstream wait for a continue nobody sends.
      out.splice(i, 2);
    } else if (lower === 'x-forwarded-host') {
      haveXfHost = true;
    } else if (hostRewrite !== undefined && lower === 'host') {
      out[i + 1] = hostRewrite;
    }
  }
  out.push('x-forwarded-for', xff === undefined ? fwd.clientIp : `${xff}, ${fwd.clientIp}`);
  out.push('x-forwarded-proto', fwd.proto);
  if (!haveXfHost && fwd.host !== undefined) out.push('x-forwarded-host', fwd.host);
  return out;
}

export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
