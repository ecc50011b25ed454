// The supervisor's half of live connection migration: it receives fds from
// leaving workers and hands each to a worker of the current generation,
// keeping both halves of an L4 session together and counting write fences
// per session and direction (docs/upgrade.md): an importer may write into a
// direction only when every earlier owner has released it, including when
// a session moves again before an older fence was released.
import type { Direction, ExportedConn, SupervisorToWorker } from '../common/ipc.js';
import type { Logger } from '../common/log.js';

export interface RelayEndpoint {
  readonly pid: number;
  readonly exited: boolean;
  sendHandle(msg: SupervisorToWorker, handle: unknown, cb?: (err: Error | null) => void): void;
  send(msg: SupervisorToWorker): void;
}

interface SessionState {
  owner: RelayEndpoint;
  fences: { d2u: number; u2d: number };
}

interface RawHandle {
  close(cb?: () => void): void;
}

export class ConnectionRelay {
  /** Sessions whose 'up' part is still to come, or with fences outstanding. */
  readonly #sessions = new Map<string, SessionState>();
  #next = 0;
  #inFlight = 0;

  constructor(
    /** Workers that may take connections now (current generation, serving). */
    private readonly targets: () => readonly RelayEndpoint[],
    private readonly log: Logger,
    private readonly onMigrated: (kind: ExportedConn['kind']) => void,
  ) {}

  /** Handle sends not yet acknowledged by their receiver. */
  get inFlight(): number {
    return this.#inFlight;
  }

  #pick(): RelayEndpoint | undefined {
    const t = this.targets().filter((w) => !w.exited);
    if (t.length === 0) return undefined;
    return t[this.#next++ % t.length];
  }

  #forward(to: RelayEndpoint | undefined, msg: SupervisorToWorker, handle: RawHandle, kind: ExportedConn['kind']): void {
    if (!to || to.exited) {
      this.log.error({ kind }, 'no worker can take a migrating connection; closing it');
      handle.close();
      return;
    }
    this.#inFlight++;
    to.sendHandle(msg, handle, (err) => {
      this.#inFlight--;
      if (err) this.log.error({ err, kind, to: to.pid }, 'relaying a connection failed');
      // The receiver holds its own copy now (or the send failed): ours goes.
      handle.close();
    });
  }

  onExport(conn: ExportedConn, handle: unknown): void {
    const h = handle as RawHandle | undefined;
    if (!h) {
      this.log.error({ conn }, 'conn_export without a handle');
      return;
    }
    if (conn.kind === 'http') {
      this.onMigrated('http');
      this.#forward(this.#pick(), { v: 1, t: 'conn_import', conn }, h, 'http');
      return;
    }
    if (conn.part === 'down') {
      const fences = this.#sessions.get(conn.session)?.fences ?? { d2u: 0, u2d: 0 };
      if (conn.pending?.d2u) fences.d2u++;
      if (conn.pending?.u2d) fences.u2d++;
      const owner = this.#pick();
      if (owner) this.#sessions.set(conn.session, { owner, fences });
      else this.#sessions.delete(conn.session);
      this.onMigrated(conn.kind);
      this.#forward(owner, { v: 1, t: 'conn_import', conn, fenced: { d2u: fences.d2u > 0, u2d: fences.u2d > 0 } }, h, conn.kind);
      return;
    }
    // The 'up' part follows its 'down' part on the same channel: same owner.
    const s = this.#sessions.get(conn.session);
    this.#forward(s?.owner, { v: 1, t: 'conn_import', conn }, h, conn.kind);
    if (s && s.fences.d2u === 0 && s.fences.u2d === 0) this.#sessions.delete(conn.session);
  }

  onFenceRelease(session: string, dir: Direction): void {
    const s = this.#sessions.get(session);
    if (!s) {
      this.log.warn({ session, dir }, 'fence release for an unknown session');
      return;
    }
    s.fences[dir] = Math.max(0, s.fences[dir] - 1);
    if (s.fences[dir] === 0 && !s.owner.exited) s.owner.send({ v: 1, t: 'fence_release', session, dir });
    if (s.fences.d2u === 0 && s.fences.u2d === 0) this.#sessions.delete(session);
  }
}
