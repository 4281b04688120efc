import * as z from 'zod';

/**
 * Schemas of DashScope's image-synthesis API, from the seed document and the public docs.
 * Upstream answers are untrusted input: every body is parsed, unknown extra fields are kept
 * out of our types but tolerated (`z.object` strips them).
 */

/** The body of a submit call. */
export const submitBodySchema = z.object({
  model: z.string(),
  input: z.object({
    prompt: z.string(),
    negative_prompt: z.string().optional(),
    init_image: z.string().optional(),
  }),
  parameters: z.object({
    size: z.string(),
    n: z.number().int(),
    steps: z.number().int(),
    cfg: z.number(),
    seed: z.number().int().optional(),
    shift: z.number(),
  }),
});
export type SubmitBody = z.infer<typeof submitBodySchema>;

export const TASK_STATUSES = [
  'PENDING',
  'RUNNING',
  'SUSPENDED',
  'SUCCEEDED',
  'FAILED',
  'CANCELED',
  'UNKNOWN',
] as const;
export const taskStatusSchema = z.enum(TASK_STATUSES);
export type TaskStatus = z.infer<typeof taskStatusSchema>;

/** `{"output":{"task_status":"PENDING","task_id":"…"},"request_id":"…"}` */
export const submitResponseSchema = z.object({
  request_id: z.string(),
  output: z.object({
    task_id: z.string().min(1),
    task_status: taskStatusSchema,
  }),
});
export type SubmitResponse = z.infer<typeof submitResponseSchema>;

/** One entry of `output.results`: an image URL, or the reason that image failed. */
export const taskResultSchema = z.union([
  z.object({ url: z.string().min(1) }),
  z.object({ code: z.string(), message: z.string().default('') }),
]);
export type TaskResult = z.infer<typeof taskResultSchema>;

export const taskMetricsSchema = z.object({
  TOTAL: z.number().int().nonnegative(),
  SUCCEEDED: z.number().int().nonnegative(),
  FAILED: z.number().int().nonnegative(),
});
export type TaskMetrics = z.infer<typeof taskMetricsSchema>;

/** The answer to `GET /tasks/{task_id}` in every state (pending, running, succeeded, failed, unknown). */
export const taskResponseSchema = z.object({
  request_id: z.string(),
  output: z.object({
    task_id: z.string(),
    task_status: taskStatusSchema,
    submit_time: z.string().optional(),
    scheduled_time: z.string().optional(),
    end_time: z.string().optional(),
    results: z.array(taskResultSchema).optional(),
    task_metrics: taskMetricsSchema.optional(),
    code: z.string().optional(),
    message: z.string().optional(),
  }),
  usage: z.object({ image_count: z.number().int().nonnegative() }).optional(),
});
export type TaskResponse = z.infer<typeof taskResponseSchema>;

/** The answer to a successful cancel: only a request id. */
export const cancelResponseSchema = z.object({ request_id: z.string() });

/** One row of `GET /tasks?…` (the list endpoint); its times are epoch milliseconds. */
export const listedTaskSchema = z.object({
  task_id: z.string(),
  status: taskStatusSchema,
  model_name: z.string().optional(),
  gmt_create: z.union([z.number(), z.string()]).optional(),
  start_time: z.union([z.number(), z.string()]).optional(),
  end_time: z.union([z.number(), z.string()]).optional(),
});
export const listTasksResponseSchema = z.object({
  request_id: z.string(),
  data: z.array(listedTaskSchema).default([]),
  total: z.number().int().nonnegative().default(0),
  page_no: z.number().int().optional(),
  page_size: z.number().int().optional(),
});
export type ListTasksResponse = z.infer<typeof listTasksResponseSchema>;

/** Every non-200 body: `{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"…"}` */
export const errorBodySchema = z.object({
  code: z.string(),
  message: z.string().default(''),
  request_id: z.string().optional(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
