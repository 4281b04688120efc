import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRequestFile } from '../../local/request-file-run.js';
import { TURBO_DEFAULT } from '../support/configurations.js';
import { startTestApi, type TestApi } from '../support/local-api.js';

/**
 * A deployment whose `defaultModel` is turbo, served locally: `npm start` and `generate --from`
 * validate a request before the workflow sees it, and must fill in the configured model as the
 * deployed API and trigger do, not the schema's own default (large).
 */
const turbo = TURBO_DEFAULT.defaultModel;
let test: TestApi;

beforeAll(async () => {
  test = await startTestApi('local-default-model-', { generation: TURBO_DEFAULT });
  // Synthesizing the stack and starting s3rver take minutes when every core is busy.
}, 300_000);

afterAll(async () => {
  await test?.close();
});

describe('a configured default model, locally', { timeout: 120_000 }, () => {
  it('is the model of an API request that names none', async () => {
    // Act
    const created = await fetch(`${test.api.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a lighthouse at dusk', size: '512*512' }),
    });
    const { id } = (await created.json()) as { id: string };
    const shown = (await (await fetch(`${test.api.url}/v1/generations/${id}`)).json()) as {
      request: { model: string };
    };

    // Assess
    expect(created.status).toBe(202);
    expect(shown.request.model).toBe(turbo);
  });

  it('is the model of a request-file line that names none', async () => {
    // Act
    const outcome = await runRequestFile(
      test.api,
      'requests/default-model.jsonl',
      Buffer.from('{"prompt": "a red fox", "size": "512*512"}\n'),
      { io: { stdout() {}, stderr() {} }, json: true, outDir: `${test.dir}/out` },
    );
    const [line] = (outcome.document as { results: Array<{ id: string }> }).results;
    const record = await test.api.index.get(line?.id ?? '');

    // Assess
    expect(record?.request?.model).toBe(turbo);
  });
});
