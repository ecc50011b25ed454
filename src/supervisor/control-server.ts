// The control socket server: newline-delimited JSON requests from mosnctl
// (protocol in docs/control-protocol.md). A malformed request gets an error
// reply; nothing a client sends can crash the supervisor.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CONTROL_COMMANDS, MAX_CONTROL_LINE, type ControlCommand, type ControlReply, type ControlRequest } from '../common/control.js';
import { isMosnError, type ErrorCode } from '../common/errors.js';
import type { Logger } from '../common/log.js';

export interface ControlContext {
  readonly progress: (p: Record<string, unknown>) => void;
}

export type ControlHandler = (req: ControlRequest, ctx: ControlContext) => Promise<unknown>;

export async function startControlServer(socketPath: string, handler: ControlHandler, log: Logger): Promise<net.Server> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  // We hold the instance lock: a socket file left here is stale.
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((sock) => {
    sock.setEncoding('utf8');
    let buf = '';
    const write = (r: ControlReply): void => {
      if (!sock.destroyed && sock.writable) sock.write(JSON.stringify(r) + '\n');
    };
    const fail = (id: ControlRequest['id'] | null, code: ErrorCode, message: string, details?: unknown): void =>
      write({ id, ok: false, error: { code, message, ...(details === undefined ? {} : { details }) } });
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_CONTROL_LINE && !buf.includes('\n')) {
        fail(null, 'MOSN_ERR_CONTROL_BAD_REQUEST', `request line longer than ${MAX_CONTROL_LINE} bytes`);
        sock.end();
        buf = '';
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        let req: ControlRequest;
        try {
          req = JSON.parse(line) as ControlRequest;
        } catch (e) {
          fail(null, 'MOSN_ERR_CONTROL_BAD_REQUEST', `request is not valid JSON: ${(e as Error).message}`);
          continue;
        }
        if (typeof req !== 'object' || req === null || Array.isArray(req)) {
          fail(null, 'MOSN_ERR_CONTROL_BAD_REQUEST', 'request must be a JSON object like {"command":"status"}');
          continue;
        }
        const id = typeof req.id === 'string' || typeof req.id === 'number' ? req.id : null;
        if (!CONTROL_COMMANDS.includes(req.command as ControlCommand)) {
          fail(id, 'MOSN_ERR_CONTROL_BAD_REQUEST', `unknown command ${JSON.stringify(req.command)}; known: ${CONTROL_COMMANDS.join(', ')}`);
          continue;
        }
        if (req.args !== undefined && (typeof req.args !== 'object' || req.args === null || Array.isArray(req.args))) {
          fail(id, 'MOSN_ERR_CONTROL_BAD_REQUEST', '"args" must be an object');
          continue;
        }
        handler(req, { progress: (p) => write({ id, event: 'progress', progress: p }) }).then(
          (result) => write({ id, ok: true, result }),
          (err: unknown) => {
            if (isMosnError(err)) fail(id, err.code, err.message, (err as { details?: unknown }).details);
            else {
              log.error({ err }, 'control command failed');
              fail(id, 'MOSN_ERR_CONTROL_BAD_REQUEST', `internal error: ${String(err)}`);
            }
          },
        );
      }
    });
  });
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
