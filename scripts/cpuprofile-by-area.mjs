#!/usr/bin/env node
// Groups a V8 .cpuprofile's self time by area (node http, net/streams,
// prom-client, pino, mosn-ts src, GC, idle, other):
//   node scripts/cpuprofile-by-area.mjs FILE.cpuprofile
import fs from 'node:fs';

const p = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const areas = new Map();
const area = (f) => {
  const u = f.url || '';
  if (f.functionName === '(idle)') return 'idle';
  if (f.functionName === '(garbage collector)') return 'gc';
  if (u.includes('node_modules/prom-client') || u.includes('node_modules/tdigest') || u.includes('node_modules/bintrees')) return 'prom-client';
  if (u.includes('node_modules/pino')) return 'pino';
  if (u.includes('/dist/')) return 'mosn-ts';
  if (/node:_http|node:internal\/http/.test(u)) return 'node http';
  if (/node:net|node:internal\/stream|node:stream|node:internal\/streams/.test(u)) return 'node net/streams';
  if (u === '' && f.functionName && !f.functionName.startsWith('(')) return 'native (syscalls, C++)';
  return 'other js';
};
for (let i = 0; i < p.samples.length; i++) {
  const a = area(byId.get(p.samples[i]).callFrame);
  areas.set(a, (areas.get(a) ?? 0) + (p.timeDeltas[i] ?? 0));
}
const busy = [...areas.entries()].filter(([a]) => a !== 'idle').reduce((s, [, v]) => s + v, 0);
for (const [a, v] of [...areas.entries()].sort((x, y) => y[1] - x[1])) {
  console.log(`${a.padEnd(24)} ${(v / 1000).toFixed(0).padStart(7)} ms  ${a === 'idle' ? '' : ((100 * v) / busy).toFixed(1) + '% of busy'}`);
}
