import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CASES } from './cases.js';
import { type FaultSuite, startFaultSuite } from './harness.js';
import { checkBucket } from './invariants.js';
import { type MatrixRow, matrixRow, renderMatrix } from './matrix.js';
import { runCase } from './run-case.js';

/**
 * Issue 6's fault matrix: each fault through the real local workflow (synthesized definition,
 * local engine, s3rver, the DashScope emulator), its end, S3 contents and manifest asserted, then
 * the invariants. The rows it ran are what `docs/fault-matrix.md` shows.
 */
const DOC = path.join(import.meta.dirname, '..', '..', 'docs', 'fault-matrix.md');
const OUT = process.env.FAULT_MATRIX_OUT;

let suite: FaultSuite;
const rows: MatrixRow[] = [];
/** sha256 → key of every image stored so far, across cases. */
const seen = new Map<string, string>();

beforeAll(async () => {
  suite = await startFaultSuite();
});

// A case that failed half way leaves nothing running into the next (which resets the emulator).
afterEach(async () => {
  await suite.runner.abortAll();
});

afterAll(async () => {
  await suite?.close();
});

describe('the fault matrix, through the synthesized workflow', () => {
  for (const [index, fault] of CASES.entries()) {
    it(`${fault.where}: ${fault.fault}`, async () => {
      rows[index] = matrixRow(fault, await runCase(suite, fault, index, seen));
    });
  }

  it('leaves a bucket where every manifest matches its bytes and no image is stored twice', async () => {
    const manifests = await checkBucket(suite.s3.client, suite.s3.bucket);

    expect(manifests).toBe(CASES.filter((fault) => fault.expected.status === 'succeeded').length);
  });

  it(OUT ? `writes the matrix to ${OUT}` : 'matches docs/fault-matrix.md, row for row', async () => {
    const ran = rows.filter(Boolean);
    expect(ran, 'every case must pass before the matrix is compared or written').toHaveLength(CASES.length);
    const rendered = renderMatrix(rows);
    if (OUT) {
      await writeFile(path.resolve(OUT), rendered);
      return;
    }
    expect(
      await readFile(DOC, 'utf8').catch(() => ''),
      'regenerate: FAULT_MATRIX_OUT=docs/fault-matrix.md npm run test:faults',
    ).toBe(rendered);
  });
});
