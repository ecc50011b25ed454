// The instance lock: one supervisor per control socket (proper-lockfile).
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { MosnError } from '../common/errors.js';
import { controlRequest } from '../common/control.js';
import type { Logger } from '../common/log.js';

const STALE_MS = 10_000;

export async function acquireInstanceLock(controlSocket: string, log: Logger): Promise<() => Promise<void>> {
  const lockfilePath = `${controlSocket}.lock`;
  const opts = {
    realpath: false,
    lockfilePath,
    stale: STALE_MS,
    update: 2_000,
    onCompromised: (err: Error) => log.error({ err }, 'instance lock compromised (event loop blocked too long?)'),
  };
  try {
    // The lock lives next to the socket; its directory (e.g. /run/mosn) may
    // not exist yet on a fresh boot.
    fs.mkdirSync(path.dirname(controlSocket), { recursive: true });
    return await lockfile.lock(controlSocket, { ...opts, retries: 0 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
      throw new MosnError('MOSN_ERR_INSTANCE_LOCK', `cannot take the instance lock ${lockfilePath}: ${(err as Error).message}`, { cause: err });
    }
  }
  // Held: by a live supervisor (it answers) or by one that died recently
  // (the lock goes stale within STALE_MS).
  const running = await controlRequest(controlSocket, { command: 'status' }, { timeoutMs: 2000 }).catch(() => undefined);
  if (running?.ok) {
    const pid = (running.result as { pid?: number }).pid;
    throw new MosnError('MOSN_ERR_ALREADY_RUNNING', `another mosn supervisor (pid ${pid ?? '?'}) is already running on control socket ${controlSocket}`);
  }
  log.warn({ lockfilePath }, 'instance lock held but no supervisor answers; waiting for it to go stale');
  try {
    return await lockfile.lock(controlSocket, { ...opts, retries: { retries: Math.ceil(STALE_MS / 500) + 4, minTimeout: 500, maxTimeout: 500, factor: 1 } });
  } catch {
    throw new MosnError('MOSN_ERR_ALREADY_RUNNING', `the instance lock ${lockfilePath} is held by another process (another mosn starting on control socket ${controlSocket}?)`);
  }
}
