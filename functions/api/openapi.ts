import * as z from 'zod';
import { MAX_BATCH_LINES } from '../shared/batch.js';
import {
  batchLinesQuerySchema,
  batchNdjsonQuerySchema,
  batchPageQuerySchema,
  MAX_BATCH_BODY_BYTES,
} from './batch-routes.js';
import { createBatchBodySchema } from './batches.js';
import {
  batchListSchema,
  batchResultsLinkSchema,
  batchViewSchema,
  createBodySchema,
  createdBatchSchema,
  createdGenerationSchema,
  errorBodySchema,
  GENERATION_SOURCE_HEADER,
  gatewayErrorSchema,
  generationListSchema,
  generationSourceHeaderSchema,
  generationViewSchema,
  healthSchema,
  idempotencyKeySchema,
  listQuerySchema,
  MAX_BODY_BYTES,
} from './schemas.js';

const OPTIONS = { target: 'openapi-3.0', unrepresentable: 'any' } as const;

/** OpenAPI 3.0 schema objects have no `$id`: the component's name is its identity. */
function withoutId(schema: Record<string, unknown>): Record<string, unknown> {
  const { $id: _, ...rest } = schema;
  return rest;
}

/**
 * Components from the zod schemas. The request is rendered as input (fields with defaults are
 * optional to send), the answers as output; references point into `#/components/schemas`.
 */
function components(): Record<string, unknown> {
  const outputs = z.registry<{ id: string }>();
  outputs.add(errorBodySchema, { id: 'Error' });
  outputs.add(gatewayErrorSchema, { id: 'GatewayError' });
  outputs.add(healthSchema, { id: 'Health' });
  outputs.add(createdGenerationSchema, { id: 'CreatedGeneration' });
  outputs.add(generationViewSchema, { id: 'Generation' });
  outputs.add(generationListSchema, { id: 'GenerationList' });
  outputs.add(batchViewSchema, { id: 'Batch' });
  outputs.add(createdBatchSchema, { id: 'CreatedBatch' });
  outputs.add(batchListSchema, { id: 'BatchList' });
  outputs.add(batchResultsLinkSchema, { id: 'BatchResultsLink' });
  const inputs = z.registry<{ id: string }>();
  inputs.add(createBodySchema, { id: 'GenerationRequest' });
  // The handler takes `requests` as any values and checks each as a generation request.
  inputs.add(
    createBatchBodySchema.extend({ requests: z.array(createBodySchema).min(1).max(MAX_BATCH_LINES) }),
    {
      id: 'BatchRequest',
    },
  );
  const uri = (id: string) => `#/components/schemas/${id}`;
  const schemas = {
    ...z.toJSONSchema(outputs, { ...OPTIONS, io: 'output', uri }).schemas,
    ...z.toJSONSchema(inputs, { ...OPTIONS, io: 'input', uri }).schemas,
  };
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, withoutId(schema)]));
}

/** One property of an object schema, rendered as a parameter's schema (input side). */
function inputSchemaOf(schema: z.ZodType): Record<string, unknown> {
  return withoutId(z.toJSONSchema(schema, { ...OPTIONS, io: 'input' }) as Record<string, unknown>);
}

const json = (id: string) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${id}` } } });
const eitherError = {
  'application/json': {
    schema: {
      oneOf: [{ $ref: '#/components/schemas/Error' }, { $ref: '#/components/schemas/GatewayError' }],
    },
  },
};

const errorResponse = (description: string) => ({ description, content: json('Error') });

/** Answers every authenticated operation may give besides its own. */
const COMMON_RESPONSES = {
  401: {
    description:
      'No or wrong credentials. From this API (local bearer token) the body is an Error; from API Gateway (JWT mode) a GatewayError. Carries WWW-Authenticate.',
    headers: {
      'WWW-Authenticate': {
        description: 'The authentication challenge',
        required: true,
        schema: { type: 'string' },
      },
    },
    content: eitherError,
  },
  403: {
    description:
      'API Gateway refused the caller (IAM mode: no or wrong SigV4 signature, or no execute-api:Invoke)',
    content: json('GatewayError'),
  },
  429: { description: "Over the stage's throttle (API Gateway)", content: json('GatewayError') },
  500: errorResponse('Internal error; the body never carries internals'),
  default: {
    description: 'Any other failure, from this API (Error) or from API Gateway (GatewayError, e.g. 503, 504)',
    content: eitherError,
  },
};

const idParameter = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'The generation id. An id that no generation has, or that is not one at all, answers 404.',
  schema: { type: 'string' },
};

const listQuery = listQuerySchema.shape;

const LIST_PARAMETERS = [
  { name: 'status', in: 'query', required: false, schema: inputSchemaOf(listQuery.status) },
  {
    name: 'limit',
    in: 'query',
    required: false,
    description: 'Page size.',
    schema: inputSchemaOf(listQuery.limit),
  },
  {
    name: 'cursor',
    in: 'query',
    required: false,
    description:
      'Opaque: pass back nextCursor from the previous page unchanged. At most 4096 characters; anything this API did not issue answers 400 naming cursor.',
    schema: inputSchemaOf(listQuery.cursor),
  },
];

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: [
    'Makes a create safe to retry. 1 to 255 printable ASCII characters without spaces.',
    'The same key with the same body (compared after defaults, key order ignored) returns the same generation:',
    '200 with Idempotent-Replayed: true, while the generation runs and for as long as Step Functions keeps',
    'its execution (90 days after it ends). The same key with another body answers 409.',
    'A bad key answers 400 naming Idempotency-Key.',
  ].join(' '),
  schema: inputSchemaOf(idempotencyKeySchema),
};

const GENERATION_SOURCE = {
  name: GENERATION_SOURCE_HEADER,
  in: 'header',
  required: false,
  description: [
    "What the caller is, recorded as the generation's source: api (the default) or cli (the sd35 command).",
    'Any other value answers 400 naming Generation-Source: the console, events, schedules, request files',
    'and npm run generate record their own source, which no caller can claim.',
  ].join(' '),
  schema: inputSchemaOf(generationSourceHeaderSchema),
};

const batchIdParameter = {
  name: 'id',
  in: 'path',
  required: true,
  description:
    'The batch id ("batch-…" or "file-…"). An id that no batch has, or that is not one at all, answers 404.',
  schema: { type: 'string' },
};

const cursorParameter = (walk: string) => ({
  name: 'cursor',
  in: 'query',
  required: false,
  description: `Opaque: pass back nextCursor from the previous page unchanged. At most 4096 characters; anything this API did not issue for ${walk} answers 400 naming cursor.`,
  schema: inputSchemaOf(batchPageQuerySchema.shape.cursor),
});

const limitParameter = {
  name: 'limit',
  in: 'query',
  required: false,
  description: 'Page size.',
  schema: inputSchemaOf(batchPageQuerySchema.shape.limit),
};

const BATCH_IDEMPOTENCY_KEY = {
  ...IDEMPOTENCY_KEY,
  description: [
    'Makes a create safe to retry. 1 to 255 printable ASCII characters without spaces; the batch id is derived from it.',
    'The same key with the same requests and settings (each request compared after defaults) returns the same batch:',
    '200 with Idempotent-Replayed: true, for as long as the batch is kept. The same key with other requests or',
    'settings answers 409 and writes nothing. A bad key answers 400 naming Idempotency-Key.',
  ].join(' '),
};

/** The answers of a route that names one batch. */
const NO_BATCH = errorResponse('Unknown or malformed batch id');

let cached: Record<string, unknown> | undefined;

/** The OpenAPI 3.0 document, generated from the same zod schemas the handlers validate with. */
export function openApiDocument(): Record<string, unknown> {
  cached ??= {
    openapi: '3.0.3',
    info: {
      title: 'SD 3.5 generations',
      version: '1.0.0',
      description: [
        'Stable Diffusion 3.5 images from DashScope, kept in S3.',
        'Every error this API answers has the shape of Error; API Gateway answers its own (GatewayError).',
        'Credentials are checked first: without them every path but /healthz answers 401 with WWW-Authenticate.',
        'Then an unknown path answers 404, and a method a path does not serve answers 405 with Allow, both as Error.',
      ].join(' '),
    },
    security: [{ sigv4: [] }, { bearer: [] }],
    paths: {
      '/v1/generations': {
        post: {
          summary: 'Create a generation',
          operationId: 'createGeneration',
          parameters: [IDEMPOTENCY_KEY, GENERATION_SOURCE],
          requestBody: {
            required: true,
            description: `application/json, at most ${MAX_BODY_BYTES} bytes.`,
            content: json('GenerationRequest'),
          },
          responses: {
            202: { description: 'Started', content: json('CreatedGeneration') },
            200: {
              description: 'Replayed: this Idempotency-Key already started it with this body',
              headers: {
                'Idempotent-Replayed': {
                  description: 'Always "true"',
                  required: true,
                  schema: { type: 'string', enum: ['true'] },
                },
              },
              content: json('CreatedGeneration'),
            },
            400: errorResponse(
              'Invalid JSON, body, Idempotency-Key, Generation-Source, or a webhook_url the notifier would refuse; details name each field',
            ),
            409: errorResponse('Idempotency-Key reused with a different body'),
            413: errorResponse(`Body over ${MAX_BODY_BYTES} bytes`),
            415: errorResponse('Body is not application/json'),
            ...COMMON_RESPONSES,
          },
        },
        get: {
          summary: 'List generations, newest first',
          operationId: 'listGenerations',
          parameters: LIST_PARAMETERS,
          responses: {
            200: { description: 'A page', content: json('GenerationList') },
            400: errorResponse('Bad or unknown query parameter; details name each'),
            ...COMMON_RESPONSES,
          },
        },
      },
      '/v1/generations/{id}': {
        get: {
          summary: 'Get a generation: status, progress, images with presigned URLs, or the error',
          operationId: 'getGeneration',
          parameters: [idParameter],
          responses: {
            200: { description: 'The generation', content: json('Generation') },
            404: errorResponse('Unknown id'),
            ...COMMON_RESPONSES,
          },
        },
      },
      '/v1/generations/{id}/cancel': {
        post: {
          summary: 'Cancel a generation (harmless to repeat)',
          operationId: 'cancelGeneration',
          parameters: [idParameter],
          responses: {
            202: { description: 'Canceled, or already ended', content: json('Generation') },
            404: errorResponse('Unknown id'),
            ...COMMON_RESPONSES,
          },
        },
      },
      '/v1/batches': {
        post: {
          summary: 'Create a batch of generations',
          description: [
            `Up to ${MAX_BATCH_LINES} requests, as JSON ({requests, priority?, webhook_url?, metadata?}) or as`,
            'NDJSON (one request per line; priority and webhook_url in the query). Each request is checked as',
            'POST /v1/generations checks one: a bad one is refused with its line number and reason (rejected) and',
            "the others go on. The valid ones, with the batch's priority unless they name their own, are written to",
            'requests/batches/{id}.jsonl, which the request-file trigger starts as generations {id}-{line}.',
            'A batch none of whose requests is valid is refused with 400, naming each line.',
          ].join(' '),
          operationId: 'createBatch',
          parameters: [
            BATCH_IDEMPOTENCY_KEY,
            GENERATION_SOURCE,
            {
              name: 'priority',
              in: 'query',
              required: false,
              description: 'NDJSON form only: the lane of its requests (batch by default).',
              schema: inputSchemaOf(batchNdjsonQuerySchema.shape.priority),
            },
            {
              name: 'webhook_url',
              in: 'query',
              required: false,
              description:
                'NDJSON form only: where batch.completed goes. A URL the notifier would refuse answers 400 naming webhook_url.',
              schema: inputSchemaOf(batchNdjsonQuerySchema.shape.webhook_url),
            },
          ],
          requestBody: {
            required: true,
            description: `application/json or application/x-ndjson (also application/ndjson, application/jsonl), at most ${MAX_BATCH_BODY_BYTES} bytes.`,
            content: {
              ...json('BatchRequest'),
              'application/x-ndjson': {
                schema: {
                  type: 'string',
                  description:
                    'One GenerationRequest as JSON per line, numbered from 1 as in an editor; blank lines are skipped but counted.',
                },
              },
            },
          },
          responses: {
            202: { description: 'Created; its requests go to the trigger', content: json('CreatedBatch') },
            200: {
              description: 'Replayed: this Idempotency-Key already created it with these requests',
              headers: {
                'Idempotent-Replayed': {
                  description: 'Always "true"',
                  required: true,
                  schema: { type: 'string', enum: ['true'] },
                },
              },
              content: json('CreatedBatch'),
            },
            400: errorResponse(
              'Invalid JSON, body, query, Idempotency-Key, Generation-Source, priority, metadata, a webhook_url the notifier would refuse, no request, too many, or none valid; details name each field or line',
            ),
            409: errorResponse('Idempotency-Key reused with other requests or settings'),
            413: errorResponse(`Body over ${MAX_BATCH_BODY_BYTES} bytes`),
            415: errorResponse('Body is neither application/json nor NDJSON'),
            ...COMMON_RESPONSES,
          },
        },
        get: {
          summary: 'List batches, newest first',
          operationId: 'listBatches',
          parameters: [limitParameter, cursorParameter('this listing')],
          responses: {
            200: { description: 'A page', content: json('BatchList') },
            400: errorResponse('Bad or unknown query parameter; details name each'),
            ...COMMON_RESPONSES,
          },
        },
      },
      '/v1/batches/{id}': {
        get: {
          summary: 'Get a batch: its status and counts',
          operationId: 'getBatch',
          parameters: [batchIdParameter],
          responses: {
            200: { description: 'The batch', content: json('Batch') },
            404: NO_BATCH,
            ...COMMON_RESPONSES,
          },
        },
      },
      '/v1/batches/{id}/generations': {
        get: {
          summary: "A batch's generations, in line order",
          operationId: 'listBatchGenerations',
          parameters: [
            batchIdParameter,
            {
              name: 'status',
              in: 'query',
              required: false,
              description: 'Only the generations in this count (see Batch.counts).',
              schema: inputSchemaOf(batchLinesQuerySchema.shape.status),
            },
            limitParameter,
            cursorParameter('this batch and status'),
          ],
          responses: {
            200: { description: 'A page', content: json('GenerationList') },
            400: errorResponse(
              'Bad or unknown query parameter, or a cursor of another batch or status; details name each',
            ),
            404: NO_BATCH,
            ...COMMON_RESPONSES,
          },
        },
      },
      '/v1/batches/{id}/cancel': {
        post: {
          summary: 'Cancel a batch (harmless to repeat)',
          description:
            'The batch turns cancelling; its waiting generations leave the queue and its running ones are cancelled; lines not started yet never start. It ends cancelled when its last generation has ended. A batch that already ended is answered as it is.',
          operationId: 'cancelBatch',
          parameters: [batchIdParameter],
          responses: {
            202: { description: 'Cancelling, or already ended', content: json('Batch') },
            404: NO_BATCH,
            ...COMMON_RESPONSES,
          },
        },
      },
      '/v1/batches/{id}/results': {
        get: {
          summary: "A link to the batch's results file (JSONL, one line per request)",
          operationId: 'getBatchResults',
          parameters: [batchIdParameter],
          responses: {
            200: { description: 'The link', content: json('BatchResultsLink') },
            404: NO_BATCH,
            409: errorResponse('The batch has not ended yet: its results are written when it does'),
            ...COMMON_RESPONSES,
          },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document',
          operationId: 'getOpenApi',
          responses: {
            200: {
              description: 'OpenAPI 3.0',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            ...COMMON_RESPONSES,
          },
        },
      },
      '/healthz': {
        get: {
          summary: 'Liveness; never needs credentials',
          operationId: 'health',
          security: [],
          responses: {
            200: { description: 'Alive', content: json('Health') },
            429: COMMON_RESPONSES[429],
            500: COMMON_RESPONSES[500],
            default: COMMON_RESPONSES.default,
          },
        },
      },
    },
    components: {
      schemas: components(),
      securitySchemes: {
        sigv4: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description:
            'On AWS by default (apiAuth mode iam): AWS Signature Version 4 for the execute-api service, with credentials allowed execute-api:Invoke.',
        },
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'On AWS in apiAuth mode jwt: a JWT from the configured issuer and audience. Locally (npm start with API_TOKEN): the token itself.',
        },
      },
    },
  };
  return cached;
}
