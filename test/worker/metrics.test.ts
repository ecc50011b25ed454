// A worker's metrics (src/worker/metrics.ts) are plain counts, sent over IPC
// in the shape of prom-client's getMetricsAsJSON() and aggregated by the
// supervisor with prom-client. Checked here: aggregated, they render exactly
// as prom-client's own Counter, Gauge and Histogram render the same updates;
// counts read before a snapshot are included; and the built worker does not
// load prom-client at all (that is the point: ~4 MB of RSS per worker).
import { execa } from 'execa';
import path from 'node:path';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import t from 'tap';
import { FastHistogram, SimpleMetric, WorkerMetrics } from '../../src/worker/metrics.js';
import { ROOT } from '../helpers/mosn.js';

/** What the supervisor renders from these snapshots (sent as JSON). */
async function rendered(parts: unknown[][]): Promise<string> {
  return AggregatorRegistry.aggregate(JSON.parse(JSON.stringify(parts)) as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}

void t.test('counters, gauges and histograms render as prom-client renders them', async (t) => {
  const buckets = [0.001, 0.01, 0.1, 1];
  const ref = new Registry();
  const rc = new Counter({ name: 'c_total', help: 'a counter', labelNames: ['listener', 'code'] as const, registers: [ref] });
  const rg = new Gauge({ name: 'g', help: 'a gauge', labelNames: ['listener'] as const, registers: [ref] });
  const rh = new Histogram({ name: 'h', help: 'a histogram', labelNames: ['listener', 'x'] as const, buckets, registers: [ref] });
  const c = new SimpleMetric('counter', 'c_total', 'a counter', ['listener', 'code'] as const);
  const g = new SimpleMetric('gauge', 'g', 'a gauge', ['listener'] as const);
  const h = new FastHistogram('h', 'a histogram', ['listener', 'x'] as const, buckets);

  for (const [l, code, n] of [['web', 'E1', 1], ['web', 'E2', 3], ['api', 'E1', 2], ['web', 'E1', 4]] as const) {
    rc.labels(l, code).inc(n);
    c.labels(l, code).inc(n);
  }
  rg.labels('web').inc(3);
  rg.labels('web').dec();
  rg.labels('api').inc(0);
  g.labels('web').inc(3);
  g.labels('web').dec();
  g.labels('api').inc(0);
  // On a bound, between bounds, above all bounds, zero; two label sets.
  for (const [l, v] of [['web', 0.001], ['web', 0.005], ['web', 0.5], ['web', 7], ['web', 0], ['api', 0.01], ['api', 0.01]] as const) {
    rh.labels(l, 'y').observe(v);
    h.labels(l, 'y').observe(v);
  }

  const ours = [c.snapshot(), g.snapshot(), h.snapshot()];
  t.equal(await rendered([ours]), await rendered([await ref.getMetricsAsJSON()]), 'one worker');
  t.equal(await rendered([ours, ours]), await rendered([await ref.getMetricsAsJSON(), await ref.getMetricsAsJSON()]), 'two workers summed');
  t.match(await rendered([ours]), /^c_total\{listener="web",code="E1"\} 5$/m);
  t.match(await rendered([ours]), /^g\{listener="web"\} 2$/m);
  t.match(await rendered([ours]), /^h_bucket\{le="0\.01",listener="web",x="y"\} 3$/m);

  t.throws(() => c.labels('only-one'), /c_total: 2 label values expected, got 1/);
  t.throws(() => h.labels('only-one'), /h: 2 label values expected, got 1/);
  h.reset();
  t.same(h.snapshot().values, [], 'reset empties a histogram');
});

void t.test('snapshots are totals, and run the collect hooks first', async (t) => {
  const m = new WorkerMetrics();
  const reqs = m.httpRequests.labels('web', 'vh', 'r', '2xx');
  t.equal(m.httpRequests.labels('web', 'vh', 'r', '2xx'), reqs, 'one child per label set');
  const bytes = m.bytesIn.labels('web');
  let pending = 100;
  m.onCollect(() => {
    bytes.inc(pending);
    pending = 0;
  });
  reqs.inc();
  reqs.inc(4);
  const value = (name: string): number | undefined => m.snapshot().find((x) => x.name === name)?.values[0]?.value;
  t.equal(value('mosn_http_requests_total'), 5);
  t.equal(value('mosn_downstream_bytes_received_total'), 100, 'the hook ran before the snapshot');
  reqs.inc();
  t.equal(value('mosn_http_requests_total'), 6, 'a later snapshot holds the total, nothing counted twice');
  t.equal(value('mosn_downstream_bytes_received_total'), 100);
  const names = m.snapshot().map((x) => x.name);
  t.equal(new Set(names).size, names.length, 'each metric once');
  t.ok(names.includes('mosn_tcp_session_duration_seconds') && names.includes('mosn_connections_imported_total'));
});

void t.test('the built worker does not load prom-client', async (t) => {
  // Every CommonJS file the worker's entry point pulls in (prom-client is
  // CommonJS; ESM imports of it land in the CommonJS module cache too).
  // Without an IPC channel the worker loads and then waits for nothing:
  // node exits.
  const script = `
    const Module = require('node:module');
    import(${JSON.stringify(path.join(ROOT, 'dist/worker/main.js'))}).then(() => console.log(JSON.stringify(Object.keys(Module._cache))));
  `;
  const r = await execa(process.execPath, ['-e', script], { reject: false, timeout: 30_000 });
  t.equal(r.exitCode, 0, r.stderr);
  const files = JSON.parse(r.stdout) as string[];
  t.ok(files.some((f) => f.includes('/node_modules/pino/')), 'the cache shows the worker’s CommonJS dependencies (pino)');
  t.same(
    files.filter((f) => /\/node_modules\/(prom-client|@opentelemetry)\//.test(f)),
    [],
    'no prom-client',
  );
});
