#!/usr/bin/env node
// mosn start | validate | version
import path from 'node:path';
import { ConfigError, errorMessage, isMosnError } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { VERSION } from '../common/version.js';
import { loadConfig } from '../config/index.js';
import { Supervisor } from '../supervisor/supervisor.js';
import { predecessorPeer } from '../upgrade/handover.js';
import { parseArgs, UsageError } from './args.js';

const USAGE = `usage:
  mosn start -c FILE       run the supervisor in the foreground
  mosn validate -c FILE    check a config file; exit 0, or 1 listing every error
  mosn version             print the version
`;

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, new Set(['-c', '--config']));
  const cmd = args.positional[0];
  if (args.flags.has('-h') || args.flags.has('--help') || cmd === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const configFlag = args.flags.get('-c') ?? args.flags.get('--config');
  const configFile = typeof configFlag === 'string' ? path.resolve(configFlag) : undefined;
  switch (cmd) {
    case 'version':
      process.stdout.write(`mosn-ts ${VERSION} (node ${process.version})\n`);
      return 0;
    case 'validate': {
      if (!configFile) throw new UsageError('validate needs -c FILE');
      try {
        await loadConfig(configFile);
      } catch (err) {
        if (err instanceof ConfigError) {
          printConfigError(err, configFile);
          return 1;
        }
        throw err;
      }
      process.stdout.write(`${configFile}: ok\n`);
      return 0;
    }
    case 'start':
      if (!configFile) throw new UsageError('start needs -c FILE');
      return start(configFile);
    case undefined:
      throw new UsageError('missing command');
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}

/** Prints a config error as `validate` does: one FILE:LINE:COL line per issue. */
function printConfigError(err: ConfigError, configFile: string): void {
  process.stderr.write(err.message + '\n');
  process.stderr.write(`${err.issues.length} error${err.issues.length === 1 ? '' : 's'} in ${configFile} [${err.code}]\n`);
}

/** `mosn: message [CODE]` on stderr. */
function printError(err: unknown): void {
  process.stderr.write(`mosn: ${errorMessage(err)}${isMosnError(err) ? ` [${err.code}]` : ''}\n`);
}

async function start(configFile: string): Promise<number> {
  let config;
  try {
    config = await loadConfig(configFile);
  } catch (err) {
    if (err instanceof ConfigError) printConfigError(err, configFile);
    else printError(err);
    return 1;
  }
  const log = createLogger('supervisor', {}, config.log.level);
  const sup = new Supervisor(config, log);
  let exiting = false;
  const stop = (graceful: boolean, why: string): void => {
    if (exiting && graceful) return;
    exiting = true;
    log.info({ signal: why }, graceful ? 'graceful stop requested' : 'fast stop requested');
    void sup.stop(graceful);
  };
  process.on('SIGTERM', () => stop(true, 'SIGTERM'));
  process.on('SIGINT', () => stop(false, 'SIGINT'));
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading the config');
    sup.reload('reload', {}, (p) => log.info({ progress: p }, 'reload progress')).catch((err: unknown) => {
      // A failed reload is logged by reload(); a refused one (another reload
      // or upgrade running, or stopping) is not: say so here.
      if (isMosnError(err) && (err.code === 'MOSN_ERR_IN_PROGRESS' || err.code === 'MOSN_ERR_SHUTTING_DOWN')) log.warn({ code: err.code }, `SIGHUP: reload refused: ${err.message}`);
    });
  });
  process.on('SIGUSR1', () => {
    log.info('SIGUSR1: reopening access logs');
    sup.reopenLogs();
  });
  process.on('SIGUSR2', () => {
    log.info('SIGUSR2: handing over to a new supervisor from the running release');
    sup.reload('upgrade', {}, (p) => log.info({ progress: p }, 'upgrade progress')).catch((err: unknown) => {
      if (isMosnError(err) && (err.code === 'MOSN_ERR_IN_PROGRESS' || err.code === 'MOSN_ERR_SHUTTING_DOWN')) log.warn({ code: err.code }, `SIGUSR2: upgrade refused: ${err.message}`);
    });
  });
  const predecessor = predecessorPeer(log);
  try {
    if (predecessor) await sup.takeover(predecessor);
    else await sup.start();
  } catch (err) {
    log.fatal({ code: isMosnError(err) ? err.code : undefined, err: isMosnError(err) ? undefined : err }, errorMessage(err));
    printError(err);
    return 1;
  }
  await sup.stopped;
  log.info('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (code !== 0) setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`mosn: ${err.message}\n${USAGE}`);
      process.exit(2);
    }
    printError(err);
    process.exit(1);
  },
);
