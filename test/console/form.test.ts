import { describe, expect, it } from 'vitest';
import { formValuesOf, requestBodyOf } from '../../functions/api/console/form.js';

describe('the create form as a request body', () => {
  it('leaves empty fields out so their defaults apply, and sends the prompt even when empty', () => {
    expect(requestBodyOf(formValuesOf({ prompt: '', negative_prompt: '', n: '', seed: '  ' }))).toEqual({
      prompt: '',
    });
  });

  it('turns number fields holding numbers into numbers', () => {
    expect(requestBodyOf(formValuesOf({ prompt: 'p', n: '2', cfg: '4.5', seed: '0' }))).toEqual({
      prompt: 'p',
      n: 2,
      cfg: 4.5,
      seed: 0,
    });
  });

  it('keeps a number field that is not a number as text, for the schema to name', () => {
    expect(requestBodyOf(formValuesOf({ prompt: 'p', steps: 'many' }))).toMatchObject({ steps: 'many' });
  });

  it('sends the ticked webhook events as a list, one or many', () => {
    expect(requestBodyOf(formValuesOf({ prompt: 'p', webhook_events: 'generation.failed' }))).toMatchObject({
      webhook_events: ['generation.failed'],
    });
    expect(
      requestBodyOf(
        formValuesOf({ prompt: 'p', webhook_events: ['generation.failed', 'generation.succeeded'] }),
      ),
    ).toMatchObject({ webhook_events: ['generation.failed', 'generation.succeeded'] });
  });

  it('ignores fields the form does not have', () => {
    expect(requestBodyOf(formValuesOf({ prompt: 'p', idempotency_key: 'k', extra: 'x' }))).toEqual({
      prompt: 'p',
    });
  });
});
