// Reads V8's `--trace-gc-nvp` lines (one name=value line per GC) and sums
// what a load cost in garbage collection: bytes allocated and promoted,
// young-generation GCs (scavenges) and full ones (mark-compacts), and their
// pauses. bench:profile --gc prints it per request; it is how the
// allocation-site pretenuring of bench/RESULTS.md (eighth pass) was found.

export interface GcSummary {
  scavenges: number;
  scavengePauseMs: number;
  fullGcs: number;
  fullGcPauseMs: number;
  /** Bytes allocated between the GCs (V8's `allocated`, summed). */
  allocatedBytes: number;
  /** Bytes moved from the young to the old generation by scavenges. */
  promotedBytes: number;
}

/** Sums the --trace-gc-nvp lines in `text` (other lines are ignored). */
export function summariseGcTrace(text: string): GcSummary {
  const s: GcSummary = { scavenges: 0, scavengePauseMs: 0, fullGcs: 0, fullGcPauseMs: 0, allocatedBytes: 0, promotedBytes: 0 };
  for (const line of text.split('\n')) {
    const kind = / gc=(\w+) /.exec(line)?.[1];
    if (!kind) continue;
    const num = (name: string): number => Number(new RegExp(`(?:^|\\s)${name}=([\\d.]+)`).exec(line)?.[1] ?? 0);
    s.allocatedBytes += num('allocated');
    if (kind === 's') {
      s.scavenges++;
      s.scavengePauseMs += num('pause');
      s.promotedBytes += num('promoted');
    } else if (kind === 'mc' || kind === 'ms') {
      s.fullGcs++;
      s.fullGcPauseMs += num('pause');
    }
  }
  return s;
}

/** The summary per request, as bench:profile --gc prints it. */
export function formatGcSummary(s: GcSummary, requests: number): string {
  const per = (v: number): string => (requests > 0 ? v / requests : 0).toLocaleString('en-US', { maximumFractionDigits: 1 });
  const us = (ms: number): string => (requests > 0 ? (ms * 1000) / requests : 0).toFixed(2);
  return [
    `GC of the workers during the load (V8 --trace-gc-nvp), ${requests.toLocaleString('en-US')} requests:`,
    `  allocated      ${per(s.allocatedBytes)} bytes/request`,
    `  promoted       ${per(s.promotedBytes)} bytes/request`,
    `  scavenges      ${s.scavenges} (${s.scavenges > 0 ? `one per ${Math.round(requests / s.scavenges)} requests` : 'none'}), pause ${us(s.scavengePauseMs)} µs/request`,
    `  full GCs       ${s.fullGcs}, pause ${us(s.fullGcPauseMs)} µs/request`,
  ].join('\n');
}
