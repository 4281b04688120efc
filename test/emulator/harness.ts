import { AdjustableClock } from '../../functions/shared/clock.js';
import { createEmulator, type EmulatorOptions } from '../../local/dashscope-emulator/app.js';

/** The key every test emulator accepts. */
export const API_KEY = 'sk-test-key';

/** A status and parsed JSON body. */
export interface JsonAnswer {
  status: number;
  body: any;
}

/** A minimal valid submit body, with `parameters` merged in. */
export function submitBody(parameters: Record<string, unknown> = {}, model = 'stable-diffusion-3.5-large') {
  return { model, input: { prompt: 'a running cat', negative_prompt: 'yellow cat' }, parameters };
}

/** An emulator on an adjustable clock, with one helper per API call going through `app.request`. */
export function createHarness(options: EmulatorOptions = {}) {
  const clock = new AdjustableClock();
  const { app, control } = createEmulator({ clock, apiKey: API_KEY, ...options });
  const auth = { Authorization: `Bearer ${API_KEY}` };

  async function call(path: string, init: RequestInit = {}): Promise<JsonAnswer> {
    const response = await app.request(`/api/v1${path}`, init);
    return { status: response.status, body: await response.json() };
  }

  return {
    clock,
    app,
    control,
    call,
    submit(body: unknown = submitBody(), headers: Record<string, string> = {}) {
      return call('/services/aigc/text2image/image-synthesis', {
        method: 'POST',
        headers: { ...auth, 'X-DashScope-Async': 'enable', 'Content-Type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
    get(taskId: string) {
      return call(`/tasks/${taskId}`, { headers: auth });
    },
    cancel(taskId: string) {
      return call(`/tasks/${taskId}/cancel`, { method: 'POST', headers: auth });
    },
    list(query = '') {
      return call(`/tasks${query}`, { headers: auth });
    },
    /** Submits and returns the new task id, failing loudly when the submit is refused. */
    async submitTask(parameters: Record<string, unknown> = {}, model?: string): Promise<string> {
      const answer = await this.submit(submitBody(parameters, model));
      if (answer.status !== 200) throw new Error(`submit refused: ${JSON.stringify(answer.body)}`);
      return answer.body.output.task_id;
    },
  };
}

/** UUID v4 as the service writes task and request ids. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** `YYYY-MM-DD HH:mm:ss.SSS`, the tasks API's time format. */
export const CST_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/;
