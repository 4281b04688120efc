import { Hono } from 'hono';
import { createApiRoutes } from './api-routes.js';
import { createContext, createControl } from './context.js';
import { apiErrorBody } from './errors.js';
import { downloadResult, RESULTS_PREFIX } from './result-download.js';
import type { EmulatorControl, EmulatorOptions } from './types.js';

export type * from './types.js';

/** Base path of the DashScope API, as in `https://dashscope.aliyuncs.com/api/v1`. */
export const API_BASE_PATH = '/api/v1';

/** What {@link createEmulator} returns. */
export interface Emulator {
  app: Hono;
  control: EmulatorControl;
  /** The API key the emulator accepts (the given one, or the default). */
  apiKey: string;
}

/**
 * A DashScope Stable Diffusion 3.5 emulator: the async image-synthesis API under `/api/v1`
 * (submit, query, cancel, list) and OSS-like pre-signed result downloads under `/results`.
 * Task state is computed from `options.clock` on every request, so moving the clock moves tasks.
 */
export function createEmulator(options: EmulatorOptions = {}): Emulator {
  const context = createContext(options);
  const app = new Hono();
  app.route(API_BASE_PATH, createApiRoutes(context));
  app.get(`${RESULTS_PREFIX}/:task_id/:file`, (c) => downloadResult(c, context));
  app.notFound((c) => c.json(apiErrorBody('NotFound', `No route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((error, c) => c.json(apiErrorBody('InternalError', error.message), 500));
  return { app, control: createControl(context), apiKey: context.config.apiKey };
}
