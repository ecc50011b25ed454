// The control socket server: newline-delimited JSON requests from mosnctl
// (protocol in docs/control-protocol.md). A malformed request gets an error
// reply; nothing a client sends can crash the supervisor.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  CONTROL_COMMANDS,
  CONTROL_IDLE_TIMEOUT_MS,
  MAX_CONTROL_LINE,
  type ControlCommand,
  type ControlReply,
  type ControlRequest,
} from '../common/control.js';
import { isMosnError, type ErrorCode } from '../common/errors.js';
import type { Logger } from '../common/log.js';

export interface ControlContext {
  readonly progress: (p: Record<string, unknown>) => void;
  /** Runs `fn` once the final reply has been written (or could not be). */
  readonly afterReply: (fn: () => void) => void;
}

export type ControlHandler = (req: ControlRequest, ctx: ControlContext) => Promise<unknown>;

type ReplyId = ControlRequest['id'] | null;

export async function startControlServer(socketPath: string, handler: ControlHandler, log: Logger): Promise<net.Server> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  // We hold the instance lock: a socket file left here is stale.
  fs.rmSync(socketPath, { force: true });
  // allowHalfOpen: a client may shut down its side right after the request
  // (`socat`, `nc -N`) and still read the replies; we end once all are sent.
  const server = net.createServer({ allowHalfOpen: true }, (sock) => serve(sock, handler, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  fs.chmodSync(socketPath, 0o660);
  return server;
}

function serve(sock: net.Socket, handler: ControlHandler, log: Logger): void {
  sock.setEncoding('utf8');
  let buf = '';
  let pending = 0;
  let clientEnded = false;
  let refused = false;
  const write = (r: ControlReply, done?: () => void): void => {
    if (!sock.destroyed && sock.writable) sock.write(JSON.stringify(r) + '\n', () => done?.());
    else done?.();
  };
  const fail = (id: ReplyId, code: ErrorCode, message: string, details?: unknown): void =>
    write({ id, ok: false, error: { code, message, ...(details === undefined ? {} : { details }) } });
  const maybeEnd = (): void => {
    if (clientEnded && pending === 0 && !sock.destroyed) sock.end();
  };
  const refuseOversized = (): void => {
    refused = true;
    buf = '';
    fail(null, 'MOSN_ERR_CONTROL_BAD_REQUEST', `request line longer than ${MAX_CONTROL_LINE} bytes`);
    sock.end();
  };

  const onLine = (text: string): void => {
    const line = text.trim();
    if (line === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (e) {
      fail(null, 'MOSN_ERR_CONTROL_BAD_REQUEST', `request is not valid JSON: ${(e as Error).message}`);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      fail(null, 'MOSN_ERR_CONTROL_BAD_REQUEST', 'request must be a JSON object like {"command":"status"}');
      return;
    }
    const raw = parsed as { id?: unknown; command?: unknown; args?: unknown };
    const id = typeof raw.id === 'string' || typeof raw.id === 'number' ? raw.id : null;
    if (typeof raw.command !== 'string' || !(CONTROL_COMMANDS as readonly string[]).includes(raw.command)) {
      fail(id, 'MOSN_ERR_CONTROL_BAD_REQUEST', `unknown command ${JSON.stringify(raw.command)}; known: ${CONTROL_COMMANDS.join(', ')}`);
      return;
    }
    if (raw.args !== undefined && (typeof raw.args !== 'object' || raw.args === null || Array.isArray(raw.args))) {
      fail(id, 'MOSN_ERR_CONTROL_BAD_REQUEST', '"args" must be an object');
      return;
    }
    const req: ControlRequest = {
      ...(id === null ? {} : { id }),
      command: raw.command as ControlCommand,
      ...(raw.args === undefined ? {} : { args: raw.args as Record<string, unknown> }),
    };
    pending++;
    // A handler that throws synchronously rejects like one that fails later.
    let after: (() => void) | undefined;
    const run = Promise.resolve().then(() => handler(req, { progress: (p) => write({ id, event: 'progress', progress: p }), afterReply: (fn) => (after = fn) }));
    run
      .then(
        (result) => write({ id, ok: true, result }, () => after?.()),
        (err: unknown) => {
          if (isMosnError(err)) fail(id, err.code, err.message, (err as { details?: unknown }).details);
          else {
            log.error({ err, command: req.command }, 'control command failed');
            fail(id, 'MOSN_ERR_INTERNAL', `internal error: ${String(err)}`);
          }
        },
      )
      .finally(() => {
        pending--;
        maybeEnd();
      });
  };

  sock.on('error', () => undefined);
  // A connection that sends nothing and waits for nothing is dropped.
  sock.setTimeout(CONTROL_IDLE_TIMEOUT_MS, () => {
    if (pending === 0) sock.destroy();
  });
  sock.on('data', (chunk: string) => {
    if (refused) return;
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (Buffer.byteLength(line) > MAX_CONTROL_LINE) return refuseOversized();
      onLine(line);
    }
    if (Buffer.byteLength(buf) > MAX_CONTROL_LINE) refuseOversized();
  });
  sock.on('end', () => {
    clientEnded = true;
    // A last request without its newline still counts.
    if (!refused && buf.trim() !== '') {
      const line = buf;
      buf = '';
      onLine(line);
    }
    maybeEnd();
  });
}
