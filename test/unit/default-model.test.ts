import { describe, expect, it } from 'vitest';
import { generationRequestSchema, withDefaultModel } from '../../functions/shared/generation-request.js';
import { parseRequestFile } from '../../functions/trigger/request-file.js';

const TURBO = 'stable-diffusion-3.5-large-turbo';

describe('withDefaultModel', () => {
  it('fills the model into a request that names none', () => {
    expect(withDefaultModel({ prompt: 'p' }, TURBO)).toEqual({ prompt: 'p', model: TURBO });
  });

  it('leaves a named model, a missing default and anything but an object alone', () => {
    const named = { prompt: 'p', model: 'stable-diffusion-3.5-large' };
    expect(withDefaultModel(named, TURBO)).toBe(named);
    expect(withDefaultModel({ prompt: 'p' }, undefined)).toEqual({ prompt: 'p' });
    for (const value of [null, 'text', 3, ['prompt']]) expect(withDefaultModel(value, TURBO)).toBe(value);
  });

  it('still lets the schema reject a bad request with its own message', () => {
    const parsed = generationRequestSchema.safeParse(withDefaultModel({ n: 9 }, TURBO));
    expect(parsed.success).toBe(false);
  });
});

describe('request files with a default model', () => {
  it('give every line without a model the deployment’s, and keep the others', () => {
    const parsed = parseRequestFile(
      'requests/batch.jsonl',
      ['{"prompt": "a"}', '{"prompt": "b", "model": "stable-diffusion-3.5-large"}'].join('\n'),
      TURBO,
    );
    expect(parsed.map((line) => ('request' in line ? line.request.model : line.error))).toEqual([
      TURBO,
      'stable-diffusion-3.5-large',
    ]);
  });

  it('use the schema’s default when the deployment sets none', () => {
    const [line] = parseRequestFile('requests/one.json', '{"prompt": "a"}');
    expect(line && 'request' in line ? line.request.model : undefined).toBe('stable-diffusion-3.5-large');
  });
});
