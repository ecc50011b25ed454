// The Node.js majors users run (20, 22, 24). Migration relies on Node
// internals that differ between majors, so the migration tests run mosn
// under each: 22 and 24 are installed from the npm `node` package into a
// cache directory on first use (MOSN_NODE_CACHE, default .cache/node).
// MOSN_TEST_NODES=current limits a run to the Node running the tests.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { ROOT } from './mosn.js';

export interface TestNode {
  readonly major: number;
  readonly version: string;
  readonly path: string;
}

const MAJORS = [22, 24];

async function install(major: number, cache: string): Promise<string> {
  const dir = path.join(cache, String(major));
  const bin = path.join(dir, 'node_modules', '.bin', 'node');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(dir, { recursive: true });
    await execa('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `node@${major}`], { timeout: 180_000 });
  }
  return fs.realpathSync(bin);
}

let cached: Promise<TestNode[]> | undefined;

export function testNodes(): Promise<TestNode[]> {
  cached ??= (async () => {
    const nodes: TestNode[] = [{ major: Number(process.versions.node.split('.')[0]), version: process.version, path: process.execPath }];
    if (process.env['MOSN_TEST_NODES'] === 'current') return nodes;
    const cache = path.resolve(process.env['MOSN_NODE_CACHE'] ?? path.join(ROOT, '.cache', 'node'));
    for (const major of MAJORS) {
      if (nodes.some((n) => n.major === major)) continue;
      const bin = await install(major, cache);
      const version = String((await execa(bin, ['--version'])).stdout).trim();
      nodes.push({ major, version, path: bin });
    }
    return nodes;
  })();
  return cached;
}
