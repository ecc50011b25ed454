// Every Node.js internal mosn-ts relies on lives here, feature-detected at
// start-up (`detectInternals`). When one is missing the proxy still runs:
// listeners fall back to public APIs where possible and connection
// migration falls back to polite draining (see docs/upgrade.md).
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
  /** Node's native llhttp binding (the HTTP listener and the upstream pool need it). */
  readonly httpParser: boolean;
  /** A socket's libuv handle, which is what travels to another process. */
  readonly socketHandle: boolean;
  /** Parsers read sockets themselves (parser.consume); without it they are fed from 'data' events. */
  readonly parserConsume: boolean;
  /** True when live connection migration is possible on this Node. */
  readonly liveMigration: boolean;
  readonly missing: readonly string[];
}

let disabled = process.env['MOSN_DISABLE_MIGRATION_INTERNALS'] === '1';

/** For tests of the fallback path. */
export function disableInternalsForTest(): void {
  disabled = true;
}

export function detectInternals(): InternalsReport {
  const missing: string[] = [];
  const csh = (net as unknown as { _createServerHandle?: unknown })._createServerHandle;
  const createServerHandle = typeof csh === 'function';
  if (!createServerHandle) missing.push('net._createServerHandle');
  let httpParser = false;
  let parserConsume = false;
  try {
    const P = nativeHttpParser();
    httpParser = true;
    parserConsume = canConsume(P.prototype);
  } catch {
    missing.push('_http_common.HTTPParser');
  }
  const probe = new net.Socket();
  const socketHandle = '_handle' in probe && typeof (probe as unknown as { _read?: unknown })._read === 'function';
  probe.destroy();
  if (!socketHandle) missing.push('net.Socket _handle / _read');
  if (disabled) missing.push('disabled by MOSN_DISABLE_MIGRATION_INTERNALS');
  return {
    createServerHandle,
    httpParser,
    socketHandle,
    parserConsume,
    liveMigration: !disabled && httpParser && socketHandle,
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

// ---- connection migration -------------------------------------------------
// What it takes to move a live socket to another process: stop libuv reading
// (in every process that holds it before sending it on), take the bytes read
// into JS but not yet consumed, and wrap a received raw handle without
// starting to read. (An HTTP connection is detached from its parser by the
// listener's own engine, src/worker/http/h1-server.ts.)

interface InternalSocket {
  _handle: (TcpHandle & { reading?: boolean }) | null;
  _read: (n: number) => void;
  _readableState: { ended: boolean };
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
  /** Reads the stream's bytes itself, in C++ (no JS 'data' events): see consumeSocket. */
  consume?(handle: object): void;
  unconsume?(): void;
  /** A copy of the bytes of the read being parsed (valid inside the kOnExecute callback only). */
  getCurrentBuffer?(): Buffer;
  [slot: number]: unknown;
}

export interface NativeHttpParserClass {
  new (): NativeHttpParser;
  readonly prototype: NativeHttpParser;
  readonly RESPONSE: number;
  readonly REQUEST: number;
  readonly kOnMessageBegin: number;
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

/** Method names by llhttp's method index (what kOnHeadersComplete reports). */
export function nativeHttpMethods(): readonly string[] {
  const m = (require('_http_common') as { methods?: unknown }).methods;
  if (!Array.isArray(m)) throw new Error(`this Node.js (${process.version}) has no _http_common.methods, which the HTTP listener needs`);
  return m as string[];
}

// ---- parsers reading sockets directly ------------------------------------------
// `parser.consume(handle)` (what http.Server does) makes the native parser
// the socket handle's read listener: bytes go from libuv into llhttp without
// a JS Buffer, a stream push and a 'data' event per read, and the parser
// reports each read's result to its kOnExecute callback. EOF and read errors
// still reach the socket as usual. While consumed, the socket's Readable
// side sees nothing, so reading is started and stopped on the handle itself.

let consumeDisabled = process.env['MOSN_NO_PARSER_CONSUME'] === '1';

/** For tests of the fallback path (parsers fed from 'data' events). */
export function disableConsumeForTest(): void {
  consumeDisabled = true;
}

interface StreamHandle {
  isStreamBase?: boolean;
  reading?: boolean;
  readStart?(): number;
  readStop?(): number;
}

interface ReadableInternals {
  _handle: StreamHandle | null;
  _readableState: { reading: boolean; length: number };
}

/** Whether this Node's parser can consume sockets (checked once per parser class). */
export function canConsume(parser: NativeHttpParser): boolean {
  return !consumeDisabled && typeof parser.consume === 'function' && typeof parser.unconsume === 'function' && typeof parser.getCurrentBuffer === 'function';
}

/**
 * Hands the socket's reads to `parser` (true), or leaves them as 'data'
 * events (false: no stream handle, bytes already buffered in JS that must be
 * parsed first, or consume unavailable).
 */
export function consumeSocket(parser: NativeHttpParser, s: net.Socket): boolean {
  const i = s as unknown as ReadableInternals;
  const h = i._handle;
  if (!h?.isStreamBase || i._readableState.length > 0 || !canConsume(parser)) return false;
  parser.consume!(h);
  return true;
}

/**
 * Gives the socket's reads back to its Readable side. Whoever reads it next
 * (a parser again, a tunnel, nobody) starts from a consistent state: a later
 * resume() restarts a stopped handle.
 */
export function unconsumeSocket(parser: NativeHttpParser, s: net.Socket): void {
  parser.unconsume!();
  // The Readable asked for data once and, the parser having taken it all,
  // still thinks that read is pending; without this, resume() would never
  // restart a handle stopped by setHandleReading.
  (s as unknown as ReadableInternals)._readableState.reading = false;
}

/**
 * Starts or stops reading a socket: on its handle when a parser consumes
 * it (the Readable side sees nothing then), else by pausing/resuming it.
 */
export function setReading(s: net.Socket, consumed: boolean, on: boolean): void {
  if (consumed) setHandleReading(s, on);
  else if (on) {
    if (s.isPaused()) s.resume();
  } else if (!s.isPaused()) s.pause();
}

/** Starts or stops libuv reading on a (consumed) socket's handle. */
export function setHandleReading(s: net.Socket, on: boolean): void {
  const h = (s as unknown as ReadableInternals)._handle;
  if (!h || h.reading === on) return;
  h.reading = on;
  if (on) h.readStart?.();
  else h.readStop?.();
}
