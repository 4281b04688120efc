import { wantsJson } from './cli/args.js';
import { sd35 } from './cli/main.js';
import { runAsProcess } from './cli/run.js';

// `sd35 …` (bin/sd35.js): see local/cli/main.ts and docs/cli.md.
const argv = process.argv.slice(2);
await runAsProcess(wantsJson(argv), (io) => sd35(argv, { io, env: process.env }));
