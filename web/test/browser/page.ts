// The page side of the Chromium vector runner (test/browser/vectors.mjs): the same check files
// and contract as the Node runner, run in the browser against the vector files the runner
// serves at /vectors/<stem>.json.
import { CHECKS } from "../vectors/checks.gen.js";
import { plan, runCheck } from "../vectors/contract.js";

/** One vector file's outcome in the page. */
export interface FileResult {
  stem: string;
  cases: number;
  error?: string;
}

/** What the page reports to the runner. */
export interface PageReport {
  errors: string[];
  notYet: [string, string][];
  results: FileResult[];
  secureContext: boolean;
}

async function runVectors(stems: string[]): Promise<PageReport> {
  const p = plan(stems, CHECKS.keys());
  const results: FileResult[] = [];
  for (const stem of p.checked) {
    const check = CHECKS.get(stem);
    if (check === undefined) continue;
    try {
      const response = await fetch(`/vectors/${stem}.json`);
      if (!response.ok) throw new Error(`GET /vectors/${stem}.json: ${response.status}`);
      const cases = await runCheck(stem, check, (await response.json()) as unknown);
      results.push({ stem, cases });
    } catch (e) {
      results.push({ stem, cases: 0, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
  }
  return {
    errors: [...p.errors],
    notYet: p.notYet.map(([s, w]) => [s, w]),
    results,
    secureContext: globalThis.isSecureContext,
  };
}

(globalThis as unknown as { runVectors: typeof runVectors }).runVectors = runVectors;
