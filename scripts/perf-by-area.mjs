#!/usr/bin/env node
// Groups the samples of a `perf record` of Node processes by area: the
// kernel (syscalls, and on loopback the TCP delivery running inside them),
// JIT-compiled JavaScript (mosn-ts's, Node's own), V8's C++ (the runtime and
// the C++ <-> JS call machinery, builtins, GC), Node's C++, libuv, llhttp,
// libc. Unlike a V8 .cpuprofile, which charges a syscall's kernel time to the
// JS function that made it, this shows kernel and user time apart.
//   perf report -i perf.data --stdio --no-children -g none --sort dso,sym \
//     | node scripts/perf-by-area.mjs [TOP]
// (JIT frames have names when the processes ran with --perf-basic-prof.)
import fs from 'node:fs';

const top = Number(process.argv[2] ?? 25);

/** The area of one `perf report --sort dso,sym` row. */
export function areaOf(dso, sym) {
  if (dso.includes('kernel')) return 'kernel';
  if (dso.startsWith('[JIT]') || sym.startsWith('JS:') || sym.startsWith('LazyCompile:')) {
    if (/\/dist\//.test(sym)) return 'JS: mosn-ts';
    if (/ node:/.test(sym)) return "JS: Node's own";
    if (/node_modules/.test(sym)) return 'JS: dependencies';
    return 'JS: other (stubs, eval)';
  }
  if (/^libc[.-]|^ld-linux/.test(dso)) return 'libc (syscall wrappers, malloc, memcpy)';
  if (/^(node|libnode)/.test(dso)) {
    if (sym.startsWith('Builtins_')) return 'V8 builtins';
    if (/^v8::internal::(Heap|Scavenge|MarkCompact|ConcurrentMarking|Marking|Sweeper|ArrayBufferSweeper|MinorMark|IncrementalMarking|MemoryAllocator|PagedSpace|SemiSpace|Evacuat)|Scavenger|MarkingVisitor|GCTracer/.test(sym)) return 'V8 GC';
    if (sym.startsWith('v8::')) return 'V8 runtime and C++<->JS calls';
    if (/llhttp/.test(sym)) return 'llhttp';
    if (/^uv_|^uv__/.test(sym)) return 'libuv';
    if (/node::|^non-virtual thunk to node::/.test(sym)) return "Node's C++";
    return 'node binary, other';
  }
  return `other: ${dso}`;
}

/**
 * Rows of `perf report --stdio --sort dso,sym -g none`: [percent, dso,
 * symbol], largest first. Each process has its own JIT "dso" ([JIT] tid N):
 * the same function in several workers is summed into one row.
 */
export function parseReport(text) {
  const rows = new Map();
  for (const line of text.split('\n')) {
    // "    20.51%  [kernel.kallsyms]  [k] pvm_irq_enable" / "0.90%  [JIT] tid 6109  [.] JS:*request file:///..."
    const m = /^\s*([\d.]+)%\s+(.+?)\s+\[([.kgu])\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const dso = m[2].trim().replace(/^\[JIT\] tid \d+$/, '[JIT]');
    const sym = m[4].trim();
    const key = `${dso}\0${sym}`;
    const row = rows.get(key);
    if (row) row[0] += Number(m[1]);
    else rows.set(key, [Number(m[1]), dso, sym]);
  }
  return [...rows.values()].sort((a, b) => b[0] - a[0]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = parseReport(fs.readFileSync(0, 'utf8'));
  if (rows.length === 0) {
    process.stderr.write('perf-by-area: no samples in the input (expected `perf report --stdio --sort dso,sym -g none`)\n');
    process.exit(1);
  }
  const areas = new Map();
  for (const [pct, dso, sym] of rows) {
    const a = areaOf(dso, sym);
    areas.set(a, (areas.get(a) ?? 0) + pct);
  }
  for (const [a, v] of [...areas.entries()].sort((x, y) => y[1] - x[1])) console.log(`${v.toFixed(1).padStart(5)}%  ${a}`);
  console.log('');
  for (const [pct, dso, sym] of rows.slice(0, top)) console.log(`${pct.toFixed(2).padStart(6)}%  ${areaOf(dso, sym).padEnd(32)} ${sym.slice(0, 110)}`);
}
