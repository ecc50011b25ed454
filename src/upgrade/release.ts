// Release directories: a built copy of the project (package.json, dist/,
// node_modules/). `mosnctl upgrade RELEASE_DIR` forks the next generation
// from one; an optional release.json may name the Node binary to run it.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MosnError } from '../common/errors.js';

export interface Release {
  readonly dir: string;
  readonly version: string;
  /** Worker entry point. */
  readonly workerScript: string;
  /** Supervisor CLI entry point. */
  readonly cliScript: string;
  /** Node binary to run it with. */
  readonly node: string;
}

/** The release this process runs from. */
export function currentReleaseDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
}

export function resolveRelease(dir: string = currentReleaseDir(), defaultNode = process.execPath): Release {
  const abs = path.resolve(dir);
  const need = (rel: string): string => {
    const p = path.join(abs, rel);
    if (!fs.existsSync(p)) throw new MosnError('MOSN_ERR_RELEASE_INVALID', `release ${abs} is incomplete: ${rel} is missing (build it with scripts/release.sh)`);
    return p;
  };
  const pkgFile = need('package.json');
  let version = '?';
  try {
    version = (JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { version?: string }).version ?? '?';
  } catch (err) {
    throw new MosnError('MOSN_ERR_RELEASE_INVALID', `release ${abs}: package.json is not valid JSON: ${(err as Error).message}`);
  }
  const workerScript = need('dist/worker/main.js');
  const cliScript = need('dist/cli/mosn.js');
  let node = defaultNode;
  const manifest = path.join(abs, 'release.json');
  if (fs.existsSync(manifest)) {
    let m: { node?: unknown };
    try {
      m = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { node?: unknown };
    } catch (err) {
      throw new MosnError('MOSN_ERR_RELEASE_INVALID', `release ${abs}: release.json is not valid JSON: ${(err as Error).message}`);
    }
    if (m.node !== undefined) {
      if (typeof m.node !== 'string' || m.node === '') throw new MosnError('MOSN_ERR_RELEASE_INVALID', `release ${abs}: release.json "node" must be a path to a node binary`);
      node = path.resolve(abs, m.node);
      try {
        fs.accessSync(node, fs.constants.X_OK);
      } catch {
        throw new MosnError('MOSN_ERR_RELEASE_INVALID', `release ${abs}: node binary ${node} (from release.json) is not executable`);
      }
    }
  }
  return { dir: abs, version, workerScript, cliScript, node };
}
