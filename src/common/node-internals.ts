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
  // libuv defers EADDRINUSE from bind() to the first listen() (and reports
  // it from getsockname() meanwhile). Surface it here: the handle is not
  // bound, and a worker's listen() on it would silently bind 0.0.0.0:random.
  const out: { address?: string; port?: number } = {};
  const err = h.getsockname(out);
  if (err !== 0 || out.port === undefined) {
    h.close();
    const code = err !== 0 ? errnoName(err) : 'EINVAL';
    const e = new Error(`bind ${host}:${port} failed: ${code}`) as NodeJS.ErrnoException;
    e.code = code;
    throw e;
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
