/**
 * The kit's report as text, one line per check, grep-friendly: "PASS <id>", "FAIL <id>: <what the HAL did>",
 * "SKIP <id>: <capability the HAL does not offer>", and a total per HAL.
 */
import type { CheckResult } from './conformance-session.js';
import type { ConformanceReport } from './run-conformance.js';

export function formatResult(r: CheckResult): string {
  const ms = `(${Math.round(r.durationMs)} ms)`;
  switch (r.status) {
    case 'pass':
      return `  PASS  ${r.id}  ${ms}`;
    case 'skip':
      return `  SKIP  ${r.id}: skipped: ${r.message ?? ''}`;
    case 'fail':
      return `  FAIL  ${r.id}: ${r.message ?? ''}  ${ms}`;
  }
}

export function formatHeader(name: string, path: string): string {
  return `HAL conformance: ${name} (${path})`;
}

export function formatTotals(rep: ConformanceReport): string {
  return `${rep.hal}: ${rep.passed} passed, ${rep.failed} failed, ${rep.skipped} skipped (${(rep.durationMs / 1000).toFixed(1)} s)`;
}
