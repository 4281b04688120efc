import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecutionStore } from '../../local/execution-store.js';

/** The local engine's executions on disk: what a new engine finds after the last one stopped. */
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function folder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'execution-store-'));
  dirs.push(dir);
  return dir;
}

const started = (name: string) => ({
  name,
  input: { prompt: name },
  startDate: 1000,
  checkpoint: { state: 'Init', input: { prompt: name } },
});

describe('ExecutionStore', () => {
  it('reopens with the running executions at their last state, and still describes the ended ones', async () => {
    const dir = folder();
    const store = new ExecutionStore(dir);
    await store.create(started('gen-a'));
    await store.create(started('gen-b'));
    await store.checkpoint('gen-a', { state: 'Poll', input: { task: 1 } });
    await store.end('gen-b', { status: 'SUCCEEDED', stopDate: 2000, output: { ok: true } });

    const reopened = new ExecutionStore(dir);

    expect(reopened.running().map((execution) => [execution.name, execution.checkpoint])).toEqual([
      ['gen-a', { state: 'Poll', input: { task: 1 } }],
    ]);
    expect(reopened.get('gen-b')).toMatchObject({ status: 'SUCCEEDED', output: { ok: true } });
    expect(reopened.get('gen-b')?.checkpoint).toBeUndefined();
  });

  it('reads only the running ones when it opens: an ended execution leaves the running folder', async () => {
    const dir = folder();
    const store = new ExecutionStore(dir);
    await store.create(started('gen-a'));
    await store.end('gen-a', { status: 'FAILED', stopDate: 2000, error: 'E', cause: 'c' });

    expect(existsSync(path.join(dir, 'running', 'gen-a.json'))).toBe(false);
    expect(existsSync(path.join(dir, 'gen-a.json'))).toBe(true);
  });

  it('removes what a writer killed mid-write left', async () => {
    const dir = folder();
    await new ExecutionStore(dir).create(started('gen-a'));
    writeFileSync(path.join(dir, 'running', 'gen-a.json.123.tmp'), '{"name":');
    writeFileSync(path.join(dir, 'gen-b.json.123.tmp'), '{');

    const reopened = new ExecutionStore(dir);

    expect(readdirSync(path.join(dir, 'running'))).toEqual(['gen-a.json']);
    expect(readdirSync(dir).filter((file) => file.endsWith('.tmp'))).toEqual([]);
    expect(reopened.running().map((execution) => execution.name)).toEqual(['gen-a']);
  });

  it('counts an execution as ended when a stop came between writing its end and removing its running file', async () => {
    const dir = folder();
    const store = new ExecutionStore(dir);
    await store.create(started('gen-a'));
    const runningFile = path.join(dir, 'running', 'gen-a.json');
    const saved = `${runningFile}.saved`;
    cpSync(runningFile, saved);
    await store.end('gen-a', { status: 'SUCCEEDED', stopDate: 2000 });
    cpSync(saved, runningFile);

    const reopened = new ExecutionStore(dir);

    expect(reopened.running()).toEqual([]);
    expect(reopened.get('gen-a')?.status).toBe('SUCCEEDED');
  });
});
