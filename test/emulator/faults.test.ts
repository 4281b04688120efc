import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';
import { type RunningEmulator, startEmulator } from '../../local/dashscope-emulator/server.js';
import type { TaskPlan } from '../../local/dashscope-emulator/types.js';
import { createHarness, submitBody } from './harness.js';

const KEY = 'sk-faults-test';
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];

describe('scripted task fates, in-process', () => {
  it('keeps a task of infinite duration RUNNING, and every later task PENDING', async () => {
    const h = createHarness();
    h.control.planNextTask({ durationMs: Number.POSITIVE_INFINITY });
    const stuck = await h.submitTask();
    const next = await h.submitTask();
    h.clock.advance(12 * 60 * 60 * 1000);

    const answer = (await h.get(stuck)).body.output;
    expect(answer.task_status).toBe('RUNNING');
    expect(answer.end_time).toBeUndefined();
    expect((await h.get(next)).body.output.task_status).toBe('PENDING');
  });

  it('cancels a PENDING task from outside, and refuses a RUNNING one', async () => {
    const h = createHarness();
    const running = await h.submitTask();
    const pending = await h.submitTask();

    expect(h.control.cancelTask(running)).toBe(false);
    expect(h.control.cancelTask(pending)).toBe(true);
    expect((await h.get(pending)).body.output.task_status).toBe('CANCELED');
    expect(h.control.calls.cancel).toBe(0);
  });

  it('forgets a task at once: it answers UNKNOWN, and the runner passes to the next', async () => {
    const h = createHarness();
    h.control.planNextTask({ durationMs: 60_000 });
    const forgotten = await h.submitTask();
    const next = await h.submitTask();

    expect(h.control.forgetTask(forgotten)).toBe(true);
    expect(h.control.forgetTask(forgotten)).toBe(false);
    expect((await h.get(forgotten)).body.output.task_status).toBe('UNKNOWN');
    expect((await h.get(next)).body.output.task_status).toBe('RUNNING');
    expect(h.control.tasksCreated).toBe(2);
  });

  it('counts calls per operation, refused ones included, and forgets them on reset', async () => {
    const h = createHarness();
    h.control.injectFault('get', { status: 500, code: 'InternalError' });
    const taskId = await h.submitTask();
    await h.get(taskId);
    await h.get(taskId);
    await h.submit(undefined, { Authorization: 'Bearer wrong' });

    expect(h.control.calls).toEqual({ submit: 2, get: 2, cancel: 0, list: 0, download: 0 });
    expect(h.control.tasksCreated).toBe(1);
    h.control.reset();
    expect(h.control.calls).toEqual({ submit: 0, get: 0, cancel: 0, list: 0, download: 0 });
    expect(h.control.tasksCreated).toBe(0);
  });

  it('refuses malformed download scripts at the call', () => {
    const h = createHarness();
    const bad = (plan: unknown) => () => h.control.planNextTask(plan as TaskPlan);
    expect(bad({ downloadFaults: { first: [{ kind: 'reset' }] } })).toThrow(RangeError);
    expect(bad({ resultOrigins: { 0: 'not a url' } })).toThrow(RangeError);
    expect(bad({ durationMs: Number.NaN })).toThrow(RangeError);
    expect(bad({ omitResults: [0.5] })).toThrow(RangeError);
    expect(bad({ downloadFaults: { 0: [{ kind: 'trickle', bytesPerSecond: 0 }] } })).toThrow(RangeError);
    expect(() => h.control.injectFault('get', { kind: 'slow', delayMs: -1 })).toThrow(RangeError);
  });
});

describe('connection faults over real HTTP', () => {
  let clock: AdjustableClock;
  let emulator: RunningEmulator;

  beforeEach(async () => {
    clock = new AdjustableClock();
    emulator = await startEmulator({ clock, apiKey: KEY });
  });

  afterEach(async () => {
    await emulator.close();
  });

  const auth = { Authorization: `Bearer ${KEY}` };

  function submit(parameters: Record<string, unknown> = {}, timeoutMs = 5000) {
    clock.advance(1000);
    return fetch(`${emulator.url}/services/aigc/text2image/image-synthesis`, {
      method: 'POST',
      headers: { ...auth, 'X-DashScope-Async': 'enable', 'Content-Type': 'application/json' },
      body: JSON.stringify(submitBody({ size: '512*512', ...parameters })),
      signal: AbortSignal.timeout(timeoutMs),
    });
  }

  /** The result URLs of a finished task submitted with `plan`. */
  async function resultUrls(plan: TaskPlan, n = 2): Promise<string[]> {
    emulator.control.planNextTask(plan);
    const { output } = (await (await submit({ n, seed: 5 })).json()) as { output: { task_id: string } };
    clock.advance(10 * 60_000);
    const queried = await fetch(`${emulator.url}/tasks/${output.task_id}`, { headers: auth });
    const body = (await queried.json()) as { output: { results: Array<{ url: string }> } };
    return body.output.results.map((result) => result.url);
  }

  const failureOf = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: Error & { cause?: { code?: string } }) => ({ name: error.name, code: error.cause?.code }),
    );

  it('resets a submit before handling it: no task exists', async () => {
    emulator.control.injectFault('submit', { kind: 'reset' });

    expect(await failureOf(submit())).toEqual({ name: 'TypeError', code: 'ECONNRESET' });
    expect(emulator.control.tasksCreated).toBe(0);
    expect((await submit()).status).toBe(200);
  });

  it('loses the answer of a submit that created its task', async () => {
    emulator.control.injectFault('submit', { kind: 'lost-response' });

    expect(await failureOf(submit())).toEqual({ name: 'TypeError', code: 'ECONNRESET' });
    expect(emulator.control.tasks()).toHaveLength(1);
  });

  it('holds a handled answer back past the client timeout', async () => {
    emulator.control.injectFault('submit', { kind: 'slow', delayMs: 400 });

    expect(await failureOf(submit({}, 150))).toEqual({ name: 'TimeoutError', code: undefined });
    expect(emulator.control.tasks()).toHaveLength(1);
  });

  it('resets task queries too', async () => {
    const { output } = (await (await submit()).json()) as { output: { task_id: string } };
    emulator.control.injectFault('get', { kind: 'reset' });

    const query = () => fetch(`${emulator.url}/tasks/${output.task_id}`, { headers: auth });
    expect(await failureOf(query())).toEqual({ name: 'TypeError', code: 'ECONNRESET' });
    expect((await query()).status).toBe(200);
  });

  it('answers a scripted 403 for one image with OSS XML, and serves it afterwards', async () => {
    const [good = '', expired = ''] = await resultUrls({
      downloadFaults: { 1: [{ status: 403, code: 'AccessDenied', message: 'Request has expired.' }] },
    });

    expect((await fetch(good)).status).toBe(200);
    const refused = await fetch(expired);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('<Code>AccessDenied</Code>');
    expect((await fetch(expired)).status).toBe(200);
  });

  it('cuts a download mid-body after announcing the whole image', async () => {
    const [, url = ''] = await resultUrls({
      downloadFaults: { 1: [{ kind: 'truncate', afterBytes: 1000 }] },
    });

    const response = await fetch(url);
    const whole = await renderPng(submitBody().input.prompt, 6, 512, 512);
    expect(response.status).toBe(200);
    expect(Number(response.headers.get('content-length'))).toBe(whole.length);
    expect(await failureOf(response.arrayBuffer())).toEqual({ name: 'TypeError', code: 'ECONNRESET' });
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(whole)).toBe(true);
  });

  it('trickles a download: the whole length announced, then a few bytes every 100 ms', async () => {
    const [url = ''] = await resultUrls({
      downloadFaults: { 0: [{ kind: 'trickle', bytesPerSecond: 100 }] },
    });
    const whole = await renderPng(submitBody().input.prompt, 5, 512, 512);

    const response = await fetch(url);
    const reader = response.body!.getReader();
    // Three reads, however long they take: a few bytes each, never the whole image.
    let received = 0;
    for (let read = 0; read < 3; read++) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.length;
    }
    await reader.cancel();

    expect(Number(response.headers.get('content-length'))).toBe(whole.length);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(whole.length);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(whole)).toBe(true);
  });

  it('resets a download before answering', async () => {
    const [url = ''] = await resultUrls({ downloadFaults: { 0: [{ kind: 'reset' }] } });

    expect(await failureOf(fetch(url))).toEqual({ name: 'TypeError', code: 'ECONNRESET' });
    expect((await fetch(url)).status).toBe(200);
  });

  it('serves another body and content type instead of the image', async () => {
    const [url = ''] = await resultUrls({
      downloadFaults: { 0: [{ kind: 'serve', contentType: 'text/html', body: '<html></html>' }] },
    });

    const response = await fetch(url);
    expect(response.headers.get('content-type')).toBe('text/html');
    expect(await response.text()).toBe('<html></html>');
  });

  it('serves an oversize PNG with its length declared, or streamed chunked', async () => {
    const [declared = '', streamed = ''] = await resultUrls({
      downloadFaults: {
        0: [{ kind: 'oversize', bytes: 2_000_000 }],
        1: [{ kind: 'oversize', bytes: 2_000_000, declareLength: false }],
      },
    });

    const first = await fetch(declared);
    expect(first.headers.get('content-length')).toBe('2000000');
    const second = await fetch(streamed);
    expect(second.headers.get('content-length')).toBeNull();
    expect(second.headers.get('transfer-encoding')).toBe('chunked');
    for (const response of [first, second]) {
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(bytes.length).toBe(2_000_000);
      expect([...bytes.subarray(0, 4)]).toEqual(PNG_SIGNATURE);
    }
  });

  it('points an image at another origin, which still serves it', async () => {
    const elsewhere = emulator.origin.replace('127.0.0.1', 'localhost');
    const [here = '', there = ''] = await resultUrls({ resultOrigins: { 1: elsewhere } });

    expect(new URL(here).origin).toBe(emulator.origin);
    expect(new URL(there).origin).toBe(elsewhere);
    expect((await fetch(there)).status).toBe(200);
    expect(emulator.control.calls.download).toBe(1);
  });
});
