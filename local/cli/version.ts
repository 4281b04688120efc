import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod';

/** The project's root folder (where package.json is). */
export const PROJECT_ROOT = path.join(import.meta.dirname, '..', '..');

/** The version in package.json. */
export function packageVersion(): string {
  const raw: unknown = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8'));
  return z.object({ version: z.string() }).parse(raw).version;
}
