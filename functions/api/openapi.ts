import * as z from 'zod';
import { GENERATION_STATUSES } from '../shared/workflow-state.js';
import {
  createBodySchema,
  createdGenerationSchema,
  errorBodySchema,
  generationListSchema,
  generationViewSchema,
} from './schemas.js';

/**
 * Components from the zod schemas. The request is rendered as input (fields with defaults are
 * optional to send), the answers as output; references point into `#/components/schemas`.
 */
function components(): Record<string, unknown> {
  const outputs = z.registry<{ id: string }>();
  outputs.add(errorBodySchema, { id: 'Error' });
  outputs.add(createdGenerationSchema, { id: 'CreatedGeneration' });
  outputs.add(generationViewSchema, { id: 'Generation' });
  outputs.add(generationListSchema, { id: 'GenerationList' });
  const inputs = z.registry<{ id: string }>();
  inputs.add(createBodySchema, { id: 'GenerationRequest' });
  const options = {
    target: 'openapi-3.0',
    unrepresentable: 'any',
    uri: (id: string) => `#/components/schemas/${id}`,
  } as const;
  const schemas = {
    ...z.toJSONSchema(outputs, { ...options, io: 'output' }).schemas,
    ...z.toJSONSchema(inputs, { ...options, io: 'input' }).schemas,
  };
  // OpenAPI 3.0 schema objects have no `$id`; the component's name is its identity.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $id: _, ...schema }]) => [id, schema]));
}

const json = (id: string) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${id}` } } });

const errorResponse = (description: string) => ({ description, content: json('Error') });
const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

let cached: Record<string, unknown> | undefined;

/** The OpenAPI 3.0 document, generated from the same zod schemas the handlers validate with. */
export function openApiDocument(): Record<string, unknown> {
  cached ??= {
    openapi: '3.0.3',
    info: {
      title: 'SD 3.5 generations',
      version: '1.0.0',
      description:
        'Stable Diffusion 3.5 images from DashScope, kept in S3. Every error has the shape of Error.',
    },
    paths: {
      '/v1/generations': {
        post: {
          summary: 'Create a generation',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              description:
                'The same key with the same body returns the same generation; with another body, 409.',
              schema: { type: 'string', maxLength: 255 },
            },
          ],
          requestBody: { required: true, content: json('GenerationRequest') },
          responses: {
            202: { description: 'Started', content: json('CreatedGeneration') },
            200: {
              description: 'Replayed: this Idempotency-Key already started it',
              content: json('CreatedGeneration'),
            },
            400: errorResponse('Invalid body or header; details name each field'),
            409: errorResponse('Idempotency-Key reused with a different body'),
            413: errorResponse('Body too large'),
            415: errorResponse('Body is not application/json'),
          },
        },
        get: {
          summary: 'List generations, newest first',
          parameters: [
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...GENERATION_STATUSES] } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 50, default: 20 } },
            { name: 'cursor', in: 'query', schema: { type: 'string' } },
          ],
          responses: {
            200: { description: 'A page', content: json('GenerationList') },
            400: errorResponse('Bad query'),
          },
        },
      },
      '/v1/generations/{id}': {
        get: {
          summary: 'Get a generation: status, progress, images with presigned URLs, or the error',
          parameters: [idParameter],
          responses: {
            200: { description: 'The generation', content: json('Generation') },
            404: errorResponse('Unknown id'),
          },
        },
      },
      '/v1/generations/{id}/cancel': {
        post: {
          summary: 'Cancel a generation (harmless to repeat)',
          parameters: [idParameter],
          responses: {
            202: { description: 'Canceled, or already ended', content: json('Generation') },
            404: errorResponse('Unknown id'),
          },
        },
      },
      '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: { description: 'OK' } } } },
    },
    components: { schemas: components() },
  };
  return cached;
}
