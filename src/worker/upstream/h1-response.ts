// The common upstream response head, parsed in JS. Most responses a proxy
// sees are one read long: a status line, plain headers and a Content-Length
// body (or none). For those, the upstream pool parses the head here, in one
// pass over one string, instead of Node's llhttp binding, which enters JS
// from C++ four to five times per response (message begin, headers
// complete, body, message complete, after the read) and copies the body
// once more. bench/RESULTS.md (seventh pass) has the measurements.
//
// This parser accepts a strict subset of what llhttp accepts and declines
// everything else (returns undefined): the caller then hands the response,
// from its first byte, to llhttp, which stays the authority on anything
// unusual (chunked or read-until-close bodies, 1xx, duplicate or malformed
// Content-Length, Transfer-Encoding, obs-fold, bare LF, oversized heads, a
// head split across reads). Being stricter than llhttp is safe; being more
// lenient is not, so each rule below mirrors one of llhttp's or is narrower.
import http from 'node:http';
import { nameIs } from '../http/headers.js';

export interface SimpleHead {
  readonly status: number;
  readonly statusText: string;
  /** Flat [name, value, ...] as llhttp gives them (values without surrounding spaces and tabs). */
  readonly headers: string[];
  /** llhttp_should_keep_alive() for this response. */
  readonly keepAlive: boolean;
  /** Body bytes that follow the head (0: none). */
  readonly bodyLength: number;
  /** Bytes of the head, blank line included. */
  readonly headLength: number;
}

// Status line HTTP/1.0 or 1.1 with a 2xx-5xx code and a reason (maybe
// empty); header lines token ":" field-content, CRLF only. Field content is
// HTAB, SP, VCHAR and obs-text (RFC 9110 5.5): no CTL, no DEL. The value
// class excludes CR, so each line ends at its first CR: linear time.
const HEAD_RE = /^HTTP\/1\.[01] [2-5]\d\d [\t\x20-\x7e\x80-\xff]*\r\n(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n$/;
const LENGTH_RE = /^\d{1,15}$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Parses the response head at the start of `buf[start, end)` when it is
 * complete there and simple (see the top of this file); `noBody` for the
 * response to a HEAD request. undefined: leave this response to llhttp.
 */
export function parseSimpleHead(buf: Buffer, start: number, end: number, noBody: boolean): SimpleHead | undefined {
  const e = buf.indexOf(CRLFCRLF, start);
  // Past `end` are stale bytes of an earlier read: not found, then.
  if (e < 0 || e + 4 > end) return undefined;
  const headLength = e + 4 - start;
  if (headLength > http.maxHeaderSize) return undefined;
  const s = buf.toString('latin1', start, e + 4);
  if (!HEAD_RE.test(s)) return undefined;
  const minor = s.charCodeAt(7) - 48;
  const status = (s.charCodeAt(9) - 48) * 100 + (s.charCodeAt(10) - 48) * 10 + (s.charCodeAt(11) - 48);
  let eol = s.indexOf('\r\n', 13);
  const statusText = s.slice(13, eol);
  const headers: string[] = [];
  let length = -1;
  let close = false;
  let keepAliveToken = false;
  const last = s.length - 2; // the blank line
  for (let pos = eol + 2; pos < last; pos = eol + 2) {
    eol = s.indexOf('\r\n', pos);
    const colon = s.indexOf(':', pos);
    const name = s.slice(pos, colon);
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && isOws(s.charCodeAt(vs))) vs++;
    while (ve > vs && isOws(s.charCodeAt(ve - 1))) ve--;
    const value = s.slice(vs, ve);
    // llhttp reads a tab around a length or a connection token differently
    // from a space (an error, or not the token): those are left to it.
    switch (name.length) {
      case 14:
        if (nameIs(name, 'content-length')) {
          if (length >= 0 || !LENGTH_RE.test(value) || hasTab(s, colon, eol)) return undefined;
          length = Number(value);
        }
        break;
      case 17:
        if (nameIs(name, 'transfer-encoding')) return undefined;
        break;
      case 10:
        if (nameIs(name, 'connection')) {
          if (hasTab(s, colon, eol)) return undefined;
          const tokens = connectionFlags(value);
          if (tokens & CLOSE) close = true;
          if (tokens & KEEP_ALIVE) keepAliveToken = true;
        }
        break;
      case 16:
        // llhttp reads Proxy-Connection as Connection: not worth mirroring.
        if (nameIs(name, 'proxy-connection')) return undefined;
        break;
    }
    headers.push(name, value);
  }
  const bodiless = status === 204 || status === 304;
  // No length and a status that may have a body: read until close, which is
  // llhttp's to do, except after HEAD. llhttp then still calls the connection
  // not reusable (it decides before it hears the response is to HEAD).
  if (length < 0 && !bodiless && !noBody) return undefined;
  const keepAlive = (minor === 1 ? !close : keepAliveToken) && (length >= 0 || bodiless);
  return { status, statusText, headers, keepAlive, bodyLength: noBody || bodiless ? 0 : length, headLength };
}

const CLOSE = 1;
const KEEP_ALIVE = 2;

/**
 * The close and keep-alive tokens of a Connection value, as llhttp reads
 * them: comma-separated, spaces around a token ignored and nothing else
 * (String.prototype.trim() would also drop a no-break space, 0xA0, which
 * llhttp keeps as part of the token). A one-token value is not copied.
 */
function connectionFlags(value: string): number {
  let found = 0;
  for (let from = 0; from <= value.length; ) {
    let to = value.indexOf(',', from);
    if (to < 0) to = value.length;
    let a = from;
    let b = to;
    while (a < b && value.charCodeAt(a) === 32) a++;
    while (b > a && value.charCodeAt(b - 1) === 32) b--;
    const token = value.slice(a, b);
    if (nameIs(token, 'close')) found |= CLOSE;
    else if (nameIs(token, 'keep-alive')) found |= KEEP_ALIVE;
    from = to + 1;
  }
  return found;
}

function hasTab(s: string, from: number, to: number): boolean {
  const t = s.indexOf('\t', from);
  return t >= 0 && t < to;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}
