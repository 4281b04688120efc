import * as z from 'zod';
import { generationRequestSchema } from '../shared/generation-request.js';
import { thumbnailSchema } from '../shared/workflow-state.js';

const storedImageSchema = z.object({
  index: z.number().int().nonnegative(),
  key: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  contentType: z.string(),
  seed: z.number().int(),
  /** Its thumbnail (WebP, at most 256 px); absent in manifests written before thumbnails, or when it could not be made. */
  thumbnail: thumbnailSchema.optional(),
});

const failedImageSchema = z.object({
  index: z.number().int().nonnegative(),
  seed: z.number().int(),
  error: z.object({ type: z.string(), code: z.string().optional(), message: z.string() }),
});

/**
 * `generations/{id}/manifest.json`, written last: its presence means every image it lists is
 * stored whole. Images that failed are listed with their reason, never left out.
 */
export const manifestSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  status: z.enum(['complete', 'partial']),
  request: generationRequestSchema,
  /** The parameters DashScope received, seed included. */
  parameters: z.record(z.string(), z.unknown()),
  images: z.array(storedImageSchema),
  failed: z.array(failedImageSchema),
  /** Where DashScope's answer disagreed with the request, its own counts or the last poll. */
  discrepancies: z.array(z.string()).optional(),
  /** What went wrong without costing an image: a thumbnail that could not be made, and why. */
  warnings: z.array(z.string()).optional(),
  dashscope: z.object({
    /** The DashScope account that ran the task (`dashscopeAccounts[].name`). */
    account: z.string().optional(),
    taskId: z.string(),
    submitRequestId: z.string(),
    queryRequestId: z.string(),
  }),
  times: z.object({
    submittedAt: z.string(),
    dashscopeSubmit: z.string().optional(),
    dashscopeScheduled: z.string().optional(),
    dashscopeEnd: z.string().optional(),
    persistedAt: z.string(),
  }),
  usage: z.object({ imageCount: z.number().int().nonnegative() }),
});
export type Manifest = z.infer<typeof manifestSchema>;
export type StoredImage = z.infer<typeof storedImageSchema>;
export type FailedImage = z.infer<typeof failedImageSchema>;

/** Where a generation's objects live. */
export const generationPrefix = (id: string): string => `generations/${id}/`;
export const manifestKey = (id: string): string => `${generationPrefix(id)}manifest.json`;
