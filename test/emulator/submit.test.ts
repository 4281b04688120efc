import { describe, expect, it } from 'vitest';
import { runTimeMs } from '../../local/dashscope-emulator/run-time.js';
import { API_KEY, createHarness, submitBody } from './harness.js';

describe('submit: authentication and headers', () => {
  it('refuses a missing or wrong API key with 401 InvalidApiKey', async () => {
    const h = createHarness();
    for (const authorization of [undefined, 'Bearer sk-wrong', API_KEY]) {
      const headers: Record<string, string> = authorization ? { Authorization: authorization } : {};
      const answer = await h.call('/services/aigc/text2image/image-synthesis', {
        method: 'POST',
        headers: { 'X-DashScope-Async': 'enable', ...headers },
        body: JSON.stringify(submitBody()),
      });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ code: 'InvalidApiKey', message: 'Invalid API-key provided.' });
    }
    expect(h.control.tasks()).toEqual([]);
    expect(h.control.counts.submits).toBe(0);
  });

  it('refuses a synchronous call (no X-DashScope-Async: enable) with 403 AccessDenied', async () => {
    const h = createHarness();
    for (const headers of [{ 'X-DashScope-Async': '' }, { 'X-DashScope-Async': 'disable' }]) {
      const answer = await h.submit(submitBody(), headers);
      expect(answer.status).toBe(403);
      expect(answer.body).toEqual({
        code: 'AccessDenied',
        message: 'current user api does not support synchronous calls',
        request_id: expect.any(String),
      });
    }
  });
});

describe('submit: validation', () => {
  const prompt = { prompt: 'a cat' };
  const cases: Array<[string, unknown, number, string, string]> = [
    [
      'unknown model',
      { model: 'stable-diffusion-xl', input: prompt },
      404,
      'ModelNotFound',
      'stable-diffusion-xl',
    ],
    ['missing model', { input: prompt }, 400, 'InvalidParameter', 'model'],
    ['body not an object', [1, 2], 400, 'InvalidParameter', 'body'],
    ['missing input', { model: 'stable-diffusion-3.5-large' }, 400, 'InvalidParameter', 'input'],
    [
      'missing prompt',
      { model: 'stable-diffusion-3.5-large', input: {} },
      400,
      'InvalidParameter',
      'input.prompt',
    ],
    ['blank prompt', submitWith({}, '   '), 400, 'InvalidParameter', 'input.prompt'],
    ['size with x', submitWith({ size: '1024x1024' }), 400, 'InvalidParameter', 'parameters.size'],
    ['size too small', submitWith({ size: '256*256' }), 400, 'InvalidParameter', 'parameters.size'],
    ['size off the 128 grid', submitWith({ size: '1000*1024' }), 400, 'InvalidParameter', 'parameters.size'],
    ['size too large', submitWith({ size: '1152*1024' }), 400, 'InvalidParameter', 'parameters.size'],
    ['n zero', submitWith({ n: 0 }), 400, 'InvalidParameter', 'parameters.n'],
    ['n five', submitWith({ n: 5 }), 400, 'InvalidParameter', 'parameters.n'],
    ['n fractional', submitWith({ n: 1.5 }), 400, 'InvalidParameter', 'parameters.n'],
    ['n as text', submitWith({ n: '2' }), 400, 'InvalidParameter', 'parameters.n'],
    ['steps zero', submitWith({ steps: 0 }), 400, 'InvalidParameter', 'parameters.steps'],
    ['steps 501', submitWith({ steps: 501 }), 400, 'InvalidParameter', 'parameters.steps'],
    ['negative seed', submitWith({ seed: -1 }), 400, 'InvalidParameter', 'parameters.seed'],
    ['seed over 2^31-1', submitWith({ seed: 2147483648 }), 400, 'InvalidParameter', 'parameters.seed'],
    ['cfg as text', submitWith({ cfg: 'high' }), 400, 'InvalidParameter', 'parameters.cfg'],
    ['shift as text', submitWith({ shift: '3' }), 400, 'InvalidParameter', 'parameters.shift'],
    ['parameters not an object', { ...submitBody(), parameters: 7 }, 400, 'InvalidParameter', 'parameters'],
    [
      'init_image not a URL',
      { model: 'stable-diffusion-3.5-large', input: { prompt: 'x', init_image: 'not a url' } },
      400,
      'InvalidParameter',
      'input.init_image',
    ],
  ];

  it.each(cases)('%s', async (_name, body, status, code, field) => {
    const h = createHarness();
    const answer = await h.submit(body);
    expect(answer.status).toBe(status);
    expect(answer.body.code).toBe(code);
    expect(answer.body.message).toContain(field);
    expect(h.control.tasks()).toEqual([]);
  });

  it('refuses a body that is not JSON', async () => {
    const h = createHarness();
    const answer = await h.submit('{not json');
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe('InvalidParameter');
  });

  it('applies the documented defaults and ignores unknown fields', async () => {
    const h = createHarness();
    const answer = await h.submit({
      model: 'stable-diffusion-3.5-large',
      input: { prompt: 'a cat', mood: 'happy' },
      parameters: { watermark: true },
      extra: 1,
    });
    expect(answer.status).toBe(200);
    const [task] = h.control.tasks();
    expect(task).toMatchObject({ width: 1024, height: 1024, n: 1, steps: 40, cfg: 4.5, shift: 3 });
    expect(task?.seed).toBeGreaterThanOrEqual(0);
    expect(task?.seed).toBeLessThanOrEqual(2147483647);
  });

  it('keeps every given parameter, init_image and the turbo model included', async () => {
    const h = createHarness();
    await h.submit({
      model: 'stable-diffusion-3.5-large-turbo',
      input: { prompt: 'a cat', negative_prompt: 'a dog', init_image: 'https://example.com/x.png' },
      parameters: { size: '512*1024', n: 3, steps: 20, cfg: 5, seed: 2147483647, shift: 2.5 },
    });
    expect(h.control.tasks()[0]).toMatchObject({
      model: 'stable-diffusion-3.5-large-turbo',
      prompt: 'a cat',
      negativePrompt: 'a dog',
      initImage: 'https://example.com/x.png',
      width: 512,
      height: 1024,
      n: 3,
      steps: 20,
      cfg: 5,
      seed: 2147483647,
      shift: 2.5,
    });
  });
});

describe('run time', () => {
  const large = 'stable-diffusion-3.5-large' as const;

  it('grows with steps, pixels and images, is a quarter per image for turbo, and divides by speed', () => {
    expect(runTimeMs({ model: large, width: 1024, height: 1024, steps: 40, n: 1 }, 1)).toBe(5400);
    expect(runTimeMs({ model: large, width: 1024, height: 1024, steps: 40, n: 4 }, 1)).toBe(20400);
    expect(runTimeMs({ model: large, width: 512, height: 512, steps: 80, n: 1 }, 1)).toBe(2900);
    const turbo = 'stable-diffusion-3.5-large-turbo' as const;
    expect(runTimeMs({ model: turbo, width: 1024, height: 1024, steps: 40, n: 1 }, 1)).toBe(1650);
    expect(runTimeMs({ model: large, width: 1024, height: 1024, steps: 40, n: 1 }, 10)).toBe(540);
  });

  it('is what the emulator schedules, scaled by the speed option', async () => {
    const h = createHarness({ speed: 4 });
    await h.submitTask({ n: 2, size: '768*512' });
    expect(h.control.tasks()[0]?.durationMs).toBe(
      runTimeMs({ model: 'stable-diffusion-3.5-large', width: 768, height: 512, steps: 40, n: 2 }, 4),
    );
  });
});

function submitWith(parameters: Record<string, unknown>, prompt = 'a cat') {
  return { model: 'stable-diffusion-3.5-large', input: { prompt }, parameters };
}
