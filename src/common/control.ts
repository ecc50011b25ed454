// The control-socket protocol (mosnctl <-> supervisor), documented in
// docs/control-protocol.md. Newline-delimited JSON over a Unix socket: one
// request per connection line, answered by zero or more `progress` events
// and exactly one final response.
import net from 'node:net';
import { MosnError, type ErrorCode } from './errors.js';

export const CONTROL_COMMANDS = ['status', 'stop', 'reload', 'upgrade'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export interface ControlRequest {
  readonly id?: string | number;
  readonly command: ControlCommand;
  readonly args?: Record<string, unknown>;
}

export type ControlReply =
  | { id?: string | number | null; ok: true; result: unknown }
  | { id?: string | number | null; ok: false; error: { code: ErrorCode; message: string; details?: unknown } }
  | { id?: string | number | null; event: 'progress'; progress: Record<string, unknown> };

/** Longest request line the supervisor accepts, in bytes (newline excluded). */
export const MAX_CONTROL_LINE = 64 * 1024;
/** A control connection with no request in flight is closed after this much silence. */
export const CONTROL_IDLE_TIMEOUT_MS = 60_000;

/**
 * Sends one request and resolves with the final reply. `onProgress` receives
 * progress events. Rejects with MOSN_ERR_CONTROL_UNAVAILABLE when nothing
 * listens on `socketPath`.
 */
export function controlRequest(
  socketPath: string,
  req: ControlRequest,
  opts: { timeoutMs?: number; onProgress?: (p: Record<string, unknown>) => void } = {},
): Promise<Extract<ControlReply, { ok: boolean }>> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    let done = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => finish(new MosnError('MOSN_ERR_CONTROL_TIMEOUT', `no answer from the supervisor on ${socketPath} within ${opts.timeoutMs} ms`)), opts.timeoutMs)
      : undefined;
    const finish = (err: Error | null, reply?: Extract<ControlReply, { ok: boolean }>): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        let msg: ControlReply;
        try {
          msg = JSON.parse(line) as ControlReply;
        } catch {
          finish(new MosnError('MOSN_ERR_CONTROL_BAD_REQUEST', `supervisor sent an unparsable reply: ${line.slice(0, 200)}`));
          return;
        }
        if ('event' in msg) opts.onProgress?.(msg.progress);
        else finish(null, msg);
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        finish(new MosnError('MOSN_ERR_CONTROL_UNAVAILABLE', `no mosn supervisor is running on ${socketPath} (${e.code})`));
      } else if (e.code === 'EACCES') {
        finish(new MosnError('MOSN_ERR_CONTROL_UNAVAILABLE', `permission denied on ${socketPath}: run as root or as a member of the socket's group`));
      } else finish(e);
    });
    sock.on('close', () => finish(new MosnError('MOSN_ERR_CONTROL_UNAVAILABLE', `the supervisor closed the control connection on ${socketPath} without answering`)));
  });
}
