// Supervisor handover: the running supervisor starts its successor from a
// release directory, detached (double fork through /bin/sh, so that the
// successor is not its child: systemd needs that to follow MAINPID), yet
// with an IPC channel to it: the successor inherits one end of Node's IPC
// socketpair (NODE_CHANNEL_FD) through the shell.
import { spawn, type ChildProcess } from 'node:child_process';
import { checkMessage, unrecognized, type PeerMessage } from '../common/ipc.js';
import type { Logger } from '../common/log.js';
import type { Release } from './release.js';

/** Environment marker: this supervisor was started to take over from another. */
export const TAKEOVER_ENV = 'MOSN_TAKEOVER';

/** One side of the supervisor-to-supervisor channel. */
export interface Peer {
  send(msg: PeerMessage, handle?: unknown, cb?: (err: Error | null) => void): void;
  onMessage(fn: (msg: PeerMessage, handle: unknown) => void): void;
  onDisconnect(fn: () => void): void;
  disconnect(): void;
  readonly connected: boolean;
}

function wrap(
  target: {
    send: (...a: any[]) => boolean;
    on: (ev: string, fn: (...a: any[]) => void) => unknown;
    disconnect?: () => void;
    connected?: boolean;
  },
  log: Logger,
): Peer {
  const p: Peer = {
    send(msg, handle, cb) {
      if (!target.connected) {
        cb?.(new Error('supervisor channel closed'));
        return;
      }
      if (handle) target.send(msg, handle, {}, (err: Error | null) => cb?.(err));
      else target.send(msg, undefined, {}, (err: Error | null) => cb?.(err));
    },
    onMessage(fn) {
      target.on('message', (raw: unknown, handle: unknown) => {
        const c = checkMessage<PeerMessage>(raw);
        if (!c.ok) {
          log.warn({ of: c.of, reason: c.reason }, 'unrecognised message from the other supervisor');
          p.send(unrecognized(c.of, c.reason));
          return;
        }
        fn(c.msg, handle);
      });
    },
    onDisconnect(fn) {
      target.on('disconnect', fn);
    },
    disconnect() {
      if (target.connected) target.disconnect?.();
    },
    get connected() {
      return target.connected === true;
    },
  };
  return p;
}

/** The successor's view: its channel to the supervisor it takes over from. */
export function predecessorPeer(log: Logger): Peer | undefined {
  if (!process.send || process.env[TAKEOVER_ENV] !== '1') return undefined;
  return wrap(process as unknown as Parameters<typeof wrap>[0], log);
}

export interface Successor {
  readonly peer: Peer;
  /** The shell that forked it (exits at once). */
  readonly shell: ChildProcess;
}

/** Starts `mosn start -c CONFIG` from `release`, detached, with a channel to us. */
export function spawnSuccessor(release: Release, configFile: string, log: Logger): Successor {
  // sh runs the successor in the background and exits: the successor is
  // reparented (to PID 1 or systemd's subreaper) and keeps fd 3, our IPC
  // channel, which Node announces to it in NODE_CHANNEL_FD.
  const env: NodeJS.ProcessEnv = { ...process.env, [TAKEOVER_ENV]: '1' };
  delete env['NODE_OPTIONS'];
  const shell = spawn('/bin/sh', ['-c', '"$0" "$@" &', release.node, release.cliScript, 'start', '-c', configFile], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env,
    serialization: 'json',
  });
  shell.on('error', (err) => log.error({ err }, 'could not start the successor supervisor'));
  return { peer: wrap(shell, log), shell };
}

type Msg<T extends PeerMessage['t']> = Extract<PeerMessage, { t: T }>;

/**
 * Awaits specific messages from the peer (with a deadline); everything else
 * goes to `fallback`. Rejects waiters when the channel closes.
 */
export class PeerInbox {
  #waiters: { types: readonly string[]; resolve: (m: { msg: PeerMessage; handle: unknown }) => void; reject: (e: Error) => void }[] = [];
  #queue: { msg: PeerMessage; handle: unknown }[] = [];
  #closed = false;
  fallback: ((msg: PeerMessage, handle: unknown) => void) | undefined;

  constructor(readonly peer: Peer) {
    peer.onMessage((msg, handle) => {
      const i = this.#waiters.findIndex((w) => w.types.includes(msg.t));
      if (i >= 0) {
        const [w] = this.#waiters.splice(i, 1);
        w!.resolve({ msg, handle });
      } else if (this.fallback) this.fallback(msg, handle);
      else this.#queue.push({ msg, handle });
    });
    peer.onDisconnect(() => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w.reject(new Error('the other supervisor closed the channel'));
    });
  }

  next<T extends PeerMessage['t']>(types: readonly T[], timeoutMs: number, what: string): Promise<{ msg: Msg<T>; handle: unknown }> {
    const q = this.#queue.findIndex((m) => (types as readonly string[]).includes(m.msg.t));
    if (q >= 0) return Promise.resolve(this.#queue.splice(q, 1)[0]! as { msg: Msg<T>; handle: unknown });
    if (this.#closed) return Promise.reject(new Error('the other supervisor closed the channel'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== entry);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const entry = {
        types,
        resolve: (m: { msg: PeerMessage; handle: unknown }) => {
          clearTimeout(timer);
          resolve(m as { msg: Msg<T>; handle: unknown });
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(entry);
    });
  }

  /** Hands queued and future unmatched messages to `fn`. */
  drainTo(fn: (msg: PeerMessage, handle: unknown) => void): void {
    this.fallback = fn;
    for (const m of this.#queue.splice(0)) fn(m.msg, m.handle);
  }
}
