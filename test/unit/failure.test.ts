import { describe, expect, it } from 'vitest';
import * as errors from '../../functions/shared/errors.js';
import { ERROR_TYPE_BY_NAME, GenerationError, WORKFLOW_ERROR } from '../../functions/shared/errors.js';
import { failureView, statusOfError } from '../../functions/shared/failure.js';

describe('ERROR_TYPE_BY_NAME', () => {
  it('gives every named error class its own type', () => {
    const classes = (Object.values(errors) as unknown[]).filter(
      (value): value is new (message: string) => GenerationError =>
        typeof value === 'function' && value.prototype instanceof GenerationError,
    );
    expect(classes.length).toBeGreaterThan(8);
    for (const ErrorClass of classes) {
      const error = new ErrorClass('x');
      expect(ERROR_TYPE_BY_NAME[error.name]).toBe(error.type);
    }
  });

  it('covers every error the workflow raises itself', () => {
    for (const name of Object.values(WORKFLOW_ERROR)) expect(ERROR_TYPE_BY_NAME[name]).toBeDefined();
  });
});

describe('failureView', () => {
  it('keeps only the message of an AWS Lambda error cause, never its trace', () => {
    const cause = JSON.stringify({
      errorType: 'ContentPolicyError',
      errorMessage: 'POST /services/aigc/text2image/image-synthesis: HTTP 400 DataInspectionFailed: refused',
      trace: ['at secret/internal/path.js:1:1'],
    });

    const view = failureView('ContentPolicyError', cause, undefined);

    expect(view).toEqual({
      type: 'content_policy',
      message: 'POST /services/aigc/text2image/image-synthesis: HTTP 400 DataInspectionFailed: refused',
      upstreamCode: 'DataInspectionFailed',
    });
  });

  it('falls back on the error name for a JSON cause without a message', () => {
    const view = failureView(
      'Runtime.ImportModuleError',
      JSON.stringify({ trace: ['at internal'] }),
      undefined,
    );

    expect(view).toEqual({
      type: 'internal_error',
      message: 'Runtime.ImportModuleError',
      upstreamCode: undefined,
    });
  });

  it.each([
    [WORKFLOW_ERROR.taskCanceled, 'canceled'],
    [WORKFLOW_ERROR.taskExpired, 'expired'],
    ['TaskExpiredError', 'expired'],
    [WORKFLOW_ERROR.deadlineExceeded, 'failed'],
    [undefined, 'failed'],
  ])('maps %s to the status %s', (name, status) => {
    expect(statusOfError(name)).toBe(status);
  });
});
