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
  try {
    nativeHttpParser();
    httpParser = true;
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
  [slot: number]: unknown;
}

export interface NativeHttpParserClass {
  new (): NativeHttpParser;
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
