// systemd socket activation (sd_listen_fds): listening sockets passed as
// fds 3.. with LISTEN_FDS, named by LISTEN_FDNAMES (the .socket unit's
// FileDescriptorName, which must equal a listener's name). LISTEN_PID is
// checked loosely: a mismatch is logged, not fatal (see NOTES-systemd.md).
import type { Logger } from '../common/log.js';
import { adoptListeningFd } from '../common/node-internals.js';
import type { Listener } from '../config/types.js';
import type { BoundListener } from './listeners.js';

const SD_LISTEN_FDS_START = 3;

export function activatedSockets(listeners: readonly Listener[], log: Logger, env = process.env): Map<string, BoundListener> {
  const out = new Map<string, BoundListener>();
  const count = Number(env['LISTEN_FDS'] ?? 0);
  if (!Number.isInteger(count) || count <= 0) return out;
  if (env['LISTEN_PID'] && Number(env['LISTEN_PID']) !== process.pid) {
    log.warn({ listen_pid: env['LISTEN_PID'] }, 'LISTEN_PID names another process; adopting the sockets anyway');
  }
  const names = (env['LISTEN_FDNAMES'] ?? '').split(':');
  for (let i = 0; i < count; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    const name = names[i] ?? '';
    const cfg = listeners.find((l) => l.name === name);
    if (!cfg) {
      log.warn({ fd, name }, 'an activated socket names no listener in the config; ignoring it');
      continue;
    }
    const h = adoptListeningFd(fd);
    out.set(name, { name, config: cfg, handle: h.handle, address: h.address, port: h.port });
    log.info({ listener: name, fd, address: h.address, port: h.port }, 'listener adopted from systemd');
  }
  // Not for our children: workers and successors get sockets over IPC.
  for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[k];
  return out;
}
