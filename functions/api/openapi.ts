import * as z from 'zod';
import {
  createBodySchema,
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
  const inputs = z.registry<{ id: string }>();
  inputs.add(createBodySchema, { id: 'GenerationRequest' });
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
