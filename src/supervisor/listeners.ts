// The supervisor's listening sockets: bound (never accepting) here, sent to
// every worker, keyed by listener name.
import { MosnError } from '../common/errors.js';
import { bindListeningHandle, type BoundHandle } from '../common/node-internals.js';
import type { Listener } from '../config/types.js';

export interface BoundListener {
  readonly name: string;
  readonly config: Listener;
  readonly handle: BoundHandle['handle'];
  /** Actual bound address and port (port 0 resolved). */
  readonly address: string;
  readonly port: number;
}

/** Binds every listener; on any failure closes what it bound and throws. */
export function bindAll(listeners: readonly Listener[], reuse?: ReadonlyMap<string, BoundListener>): BoundListener[] {
  const bound: BoundListener[] = [];
  try {
    for (const l of listeners) {
      const prev = reuse?.get(l.name);
      if (prev && prev.config.address.text === l.address.text) {
        bound.push({ ...prev, config: l });
        continue;
      }
      try {
        const h = bindListeningHandle(l.address.host, l.address.port);
        bound.push({ name: l.name, config: l, handle: h.handle, address: h.address, port: h.port });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        const hint = code === 'EADDRINUSE' ? ' (address already in use)' : code === 'EACCES' ? ' (permission denied: ports below 1024 need CAP_NET_BIND_SERVICE)' : '';
        throw new MosnError('MOSN_ERR_LISTEN', `listener "${l.name}": cannot bind ${l.address.text}: ${code}${hint}`, { cause: err });
      }
    }
  } catch (err) {
    for (const b of bound) if (!reuse?.get(b.name) || reuse.get(b.name)!.handle !== b.handle) b.handle.close();
    throw err;
  }
  return bound;
}
