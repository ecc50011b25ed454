// Every Node.js internal mosn-ts relies on lives here, feature-detected at
// start-up (`detectInternals`). When one is missing the proxy still runs:
// listeners fall back to public APIs where possible and connection
// migration falls back to polite draining (see docs/upgrade.md).
import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface TcpHandle {
  getsockname(out: Record<string, unknown>): number;
  close(cb?: () => void): void;
  readStop?(): number;
  readStart?(): number;
  fd?: number;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number, flags?: number) => TcpHandle | number;

export interface InternalsReport {
  readonly createServerHandle: boolean;
  readonly httpConnectionsList: boolean;
  readonly freeParser: boolean;
  /** True when live HTTP connection migration is possible on this Node. */
  readonly httpMigration: boolean;
  readonly missing: readonly string[];
}

let disabled = process.env['MOSN_DISABLE_MIGRATION_INTERNALS'] === '1';

/** For tests of the fallback path. */
export function disableInternalsForTest(): void {
  disabled = true;
}

function connectionsSymbol(server: http.Server): symbol | undefined {
  return Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections');
}

export function detectInternals(): InternalsReport {
  const missing: string[] = [];
  const csh = (net as unknown as { _createServerHandle?: unknown })._createServerHandle;
  const createServerHandle = typeof csh === 'function';
  if (!createServerHandle) missing.push('net._createServerHandle');
  let freeParser = false;
  try {
    freeParser = typeof require('_http_common').freeParser === 'function';
  } catch {
    freeParser = false;
  }
  if (!freeParser) missing.push('_http_common.freeParser');
  const probe = http.createServer();
  probe.emit('listening');
  const sym = connectionsSymbol(probe);
  const list = sym ? (probe as unknown as Record<symbol, { idle?: unknown } | undefined>)[sym] : undefined;
  const httpConnectionsList = typeof list?.idle === 'function';
  if (!httpConnectionsList) missing.push('http.Server connections list (http.server.connections)');
  probe.close();
  if (disabled) missing.push('disabled by MOSN_DISABLE_MIGRATION_INTERNALS');
  return {
    createServerHandle,
    httpConnectionsList,
    freeParser,
    httpMigration: !disabled && freeParser && httpConnectionsList,
    missing,
  };
}

export interface BoundHandle {
  readonly handle: TcpHandle;
  readonly address: string;
  readonly port: number;
}

/**
 * Binds host:port without listening (as node:cluster does), so the handle
 * can be sent to workers whose first listen() puts it into LISTEN state. The
 * supervisor that binds it never accepts.
 */
export function bindListeningHandle(host: string, port: number): BoundHandle {
  const csh = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof csh !== 'function') throw new Error('this Node.js has no net._createServerHandle; cannot pre-bind listeners');
  const addressType = net.isIPv6(host) ? 6 : 4;
  const h = csh(host, port, addressType);
  if (typeof h === 'number') {
    const err = new Error(`bind ${host}:${port} failed: ${errnoName(h)}`) as NodeJS.ErrnoException;
    err.code = errnoName(h);
    throw err;
  }
  const out: { address?: string; port?: number } = {};
  const rc = h.getsockname(out);
  // libuv defers EADDRINUSE from bind() to listen() (uv__tcp_bind keeps it
  // in the handle as delayed_error), and that handle-local error does not
  // travel with the fd to a worker: there, listen() on the unbound socket
  // would silently pick a random port on 0.0.0.0. A socket that is not
  // bound to what we asked for failed to bind.
  if (rc !== 0 || !out.port || (port !== 0 && out.port !== port)) {
    h.close();
    const code = rc !== 0 ? errnoName(rc) : 'EADDRINUSE';
    const err = new Error(`bind ${host}:${port} failed: ${code}`) as NodeJS.ErrnoException;
    err.code = code;
    throw err;
  }
  return { handle: h, address: out.address ?? host, port: out.port };
}

function errnoName(code: number): string {
  try {
    // util.getSystemErrorName maps libuv negative codes to names like EADDRINUSE.
    return (require('node:util') as typeof import('node:util')).getSystemErrorName(code);
  } catch {
    return `errno ${code}`;
  }
}

/**
 * Lets an http.Server that never listens itself track its connections (the
 * connections list drives headersTimeout and idle detection). On Node 20-24
 * the list is created by the server's own 'listening' handler.
 */
export function activateHttpServer(server: http.Server): void {
  server.emit('listening');
}

// ---- connection migration -------------------------------------------------
// What it takes to move a live socket to another process: stop libuv reading
// (in every process that holds it before sending it on), take the bytes read
// into JS but not yet consumed, detach an HTTP socket from its parser at a
// message boundary, and wrap a received raw handle without starting to read.

interface InternalSocket {
  _handle: (TcpHandle & { reading?: boolean }) | null;
  _read: (n: number) => void;
  _readableState: { ended: boolean };
  parser?: unknown;
  _httpMessage?: unknown;
}

function internal(s: net.Socket): InternalSocket {
  return s as unknown as InternalSocket;
}

/** The raw libuv handle under a socket (what travels over IPC). */
export function rawHandle(s: net.Socket): object | null {
  return internal(s)._handle;
}

/**
 * Stops reading for good in this process: libuv stops, and nothing (a
 * later read() or resume()) can restart it.
 */
export function stopReading(s: net.Socket): void {
  const i = internal(s);
  i._read = () => undefined;
  if (i._handle) {
    i._handle.reading = false;
    i._handle.readStop?.();
  }
}

/** True once EOF from the peer has been read (even if 'end' is not yet emitted). */
export function readEofSeen(s: net.Socket): boolean {
  return internal(s)._readableState.ended;
}

/**
 * Bytes already read into JS but not yet consumed (a paused socket's
 * buffer). Call after stopReading and after removing 'data' listeners.
 */
export function takeBuffered(s: net.Socket): Buffer {
  const chunks: Buffer[] = [];
  for (let c = s.read() as Buffer | string | null; c !== null; c = s.read() as Buffer | string | null) {
    chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Wraps a raw TCP handle received over IPC without starting to read. */
export function socketFromHandle(handle: unknown): net.Socket {
  return new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true } as unknown as net.SocketConstructorOpts);
}

type ConnectionsList = { idle(): unknown[] };

/** Parsers of `server` with no message started (the migratable ones). */
export function idleHttpParsers(server: http.Server): Set<unknown> {
  const sym = connectionsSymbol(server);
  const list = sym ? (server as unknown as Record<symbol, ConnectionsList | undefined>)[sym] : undefined;
  return new Set(list ? list.idle() : []);
}

/**
 * True when `s` sits at an HTTP message boundary: its parser has no message
 * started, no response is being written, nothing is queued to write.
 */
export function httpAtBoundary(s: net.Socket, idleParsers: Set<unknown>): boolean {
  const i = internal(s);
  return !s.destroyed && i._handle !== null && i.parser !== undefined && i.parser !== null && idleParsers.has(i.parser) && !i._httpMessage && s.writableLength === 0;
}

const HTTP_SOCKET_EVENTS = ['data', 'end', 'close', 'drain', 'error', 'timeout', 'resume', 'pause'] as const;

/**
 * Detaches a socket from Node's HTTP server at a message boundary: stop
 * reading, free the parser (unconsume), remove the server's listeners and
 * its method overrides. The socket is then a plain net.Socket whose handle
 * can be sent away.
 */
export function detachHttpSocket(s: net.Socket): void {
  stopReading(s);
  const i = internal(s);
  const { freeParser } = require('_http_common') as { freeParser: (p: unknown, req: unknown, sock: unknown) => void };
  if (i.parser) freeParser(i.parser, null, s);
  for (const ev of HTTP_SOCKET_EVENTS) s.removeAllListeners(ev);
  const own = s as unknown as Record<string, unknown>;
  delete own['on'];
  delete own['addListener'];
  delete own['prependListener'];
  delete own['setEncoding'];
  s.setTimeout(0);
  s.on('error', () => undefined);
}

/**
 * Wraps an inherited, already bound and listening socket fd (systemd socket
 * activation) as a server handle, like bindListeningHandle's.
 */
export function adoptListeningFd(fd: number): BoundHandle {
  const csh = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof csh !== 'function') throw new Error('this Node.js has no net._createServerHandle; cannot adopt inherited sockets');
  const h = csh(null as unknown as string, 0, 4, fd);
  if (typeof h === 'number') {
    const err = new Error(`cannot adopt fd ${fd}: ${errnoName(h)}`) as NodeJS.ErrnoException;
    err.code = errnoName(h);
    throw err;
  }
  const out: { address?: string; port?: number } = {};
  const rc = h.getsockname(out);
  if (rc !== 0 || !out.port) {
    h.close();
    throw new Error(`fd ${fd} is not a bound TCP socket (${rc !== 0 ? errnoName(rc) : 'no port'})`);
  }
  return { handle: h, address: out.address ?? '', port: out.port };
}

/** The callbacks and methods of Node's native llhttp binding that mosn-ts uses. */
export interface NativeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  free(): void;
  [slot: number]: unknown;
}

export interface NativeHttpParserClass {
  new (): NativeHttpParser;
  readonly RESPONSE: number;
  readonly REQUEST: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

let parserClass: NativeHttpParserClass | undefined;

/**
 * Node's own llhttp binding (`_http_common.HTTPParser`, what http.Server and
 * http.request use): the upstream client parses responses with it instead of
 * a second, WebAssembly, copy of llhttp. Present in Node 20, 22 and 24.
 */
export function nativeHttpParser(): NativeHttpParserClass {
  if (!parserClass) {
    const c = (require('_http_common') as { HTTPParser?: NativeHttpParserClass }).HTTPParser;
    if (typeof c !== 'function' || typeof c.kOnHeadersComplete !== 'number') {
      throw new Error(`this Node.js (${process.version}) has no _http_common.HTTPParser, which the HTTP proxy needs`);
    }
    parserClass = c;
  }
  return parserClass;
}
