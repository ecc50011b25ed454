// sd_notify without a native addon: systemd-notify(1) sends the datagram to
// $NOTIFY_SOCKET. The unit uses NotifyAccess=all, because the sender is
// systemd-notify (and, after a handover, another process) rather than the
// main PID itself. Messages are sent in order, one systemd-notify at a time.
import { execFile } from 'node:child_process';
import type { Logger } from '../common/log.js';

export class SdNotify {
  readonly enabled = Boolean(process.env['NOTIFY_SOCKET']);
  #chain: Promise<void> = Promise.resolve();
  #warned = false;

  constructor(private readonly log: Logger) {}

  /** Sends `KEY=VALUE` assignments as one message (no-op outside systemd). */
  send(fields: Record<string, string | number>): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const args = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
    this.#chain = this.#chain.then(
      () =>
        new Promise<void>((resolve) => {
          execFile('systemd-notify', args, { timeout: 5000 }, (err) => {
            if (err && !this.#warned) {
              this.#warned = true;
              this.log.warn({ err: err.message }, 'systemd-notify failed: is the systemd package installed?');
            }
            resolve();
          });
        }),
    );
    return this.#chain;
  }

  ready(status: string): Promise<void> {
    return this.send({ READY: 1, STATUS: status });
  }

  reloading(): Promise<void> {
    return this.send({ RELOADING: 1, MONOTONIC_USEC: (process.hrtime.bigint() / 1000n).toString() });
  }

  status(status: string): Promise<void> {
    return this.send({ STATUS: status });
  }

  stopping(): Promise<void> {
    return this.send({ STOPPING: 1 });
  }

  /** A successor announcing itself as the service's main process. */
  mainPid(status: string): Promise<void> {
    return this.send({ MAINPID: process.pid, READY: 1, STATUS: status });
  }
}
