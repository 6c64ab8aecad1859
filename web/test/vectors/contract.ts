// The contract between the vector files in `tests/vectors/` and the check files in
// `test/vectors/checks/`: which files are covered, which are knowingly not yet, and how one
// file is run. Shared by the Node runner (`test/vectors.test.ts`) and the Chromium runner
// (`test/browser/`), so both apply the same rules.

/** A check file's export: recomputes every case of one vector file, returns how many. */
export type Check = (vector: unknown) => Promise<number>;

/**
 * Vector files that have no check file yet, with who adds it and why. The runners print this
 * list on every run and fail on a vector file that is neither checked nor listed here, and on
 * an entry here that has a check file (or no vector file): the gap stays visible and shrinks.
 * Remove an entry in the same change that adds its check file.
 */
export const NOT_YET: ReadonlyMap<string, string> = new Map<string, string>([
  // Every vector file has its check (the list is kept for the next one added).
]);

/** What a run covers: the files to check, those knowingly left, and the contract's breaches. */
export interface Plan {
  /** Vector stems with a check file, sorted. */
  readonly checked: readonly string[];
  /** Vector stems listed in NOT_YET (and without a check file), sorted, with the reason. */
  readonly notYet: readonly (readonly [string, string])[];
  /** Breaches of the contract; a runner fails when this is not empty. */
  readonly errors: readonly string[];
}

/** Compares the vector files present with the check files present and NOT_YET. */
export function plan(
  vectorStems: Iterable<string>,
  checkStems: Iterable<string>,
  notYet: ReadonlyMap<string, string> = NOT_YET,
): Plan {
  const vectors = new Set(vectorStems);
  const checks = new Set(checkStems);
  const errors: string[] = [];
  for (const stem of [...vectors].sort()) {
    if (!checks.has(stem) && !notYet.has(stem)) {
      errors.push(`tests/vectors/${stem}.json has no check file test/vectors/checks/${stem}.ts and is not in notYet`);
    }
  }
  for (const stem of [...checks].sort()) {
    if (!vectors.has(stem)) errors.push(`check file ${stem}.ts has no vector file tests/vectors/${stem}.json`);
  }
  for (const stem of notYet.keys()) {
    if (checks.has(stem)) errors.push(`notYet lists ${stem}, which has a check file: remove the entry`);
    if (!vectors.has(stem)) errors.push(`notYet lists ${stem}, which has no vector file`);
  }
  return {
    checked: [...checks].filter((s) => vectors.has(s)).sort(),
    notYet: [...notYet].filter(([s]) => vectors.has(s) && !checks.has(s)).sort(([a], [b]) => (a < b ? -1 : 1)),
    errors,
  };
}

/** The number of cases a vector file holds (its `vectors` array). */
export function caseCount(file: unknown): number {
  if (typeof file !== "object" || file === null || !("vectors" in file) || !Array.isArray(file.vectors)) {
    throw new Error("a vector file is an object with a `vectors` array");
  }
  return file.vectors.length;
}

/**
 * Runs one check on one parsed vector file; throws unless it checked exactly as many cases
 * as the file holds (a check that skips cases, or counts none, fails).
 */
export async function runCheck(stem: string, check: Check, file: unknown): Promise<number> {
  const want = caseCount(file);
  const got = await check(file);
  if (got !== want) throw new Error(`${stem}: the check counted ${got} cases, the file has ${want}`);
  if (want === 0) throw new Error(`${stem}: the file has no cases`);
  return got;
}
