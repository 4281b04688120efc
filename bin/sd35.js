#!/usr/bin/env node
// The `sd35` command: runs the TypeScript CLI through tsx, so the repo needs no build step.
import { tsImport } from 'tsx/esm/api';

await tsImport('../local/cli.ts', import.meta.url);
