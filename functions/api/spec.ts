import * as z from 'zod';
import {
  admissionVariable,
  bucketVariable,
  consoleOidcEnvSchema,
  dashscopeKeyCheck,
  dashscopeVariables,
  defaultModelVariable,
  MAX_URL_EXPIRY_SECONDS,
  runTimeModelVariable,
  stateMachineArnVariable,
  tableVariable,
} from '../shared/config.js';
import { type ConfigOf, env, environmentSpec } from '../shared/env-spec.js';

/** The HTTP API: starts, reads and cancels generations; presigns image links; serves the console. */
export const apiSpec = environmentSpec(
  'api',
  {
    ...dashscopeVariables,
    GENERATIONS_TABLE: tableVariable,
    STATE_MACHINE_ARN: stateMachineArnVariable,
    BUCKET_NAME: bucketVariable,
    /** Lifetime of the presigned image URLs the API hands out; links never outlive the signing credentials (≤ 12 h). */
    URL_EXPIRY_SECONDS: env.int(z.coerce.number().int().positive().max(MAX_URL_EXPIRY_SECONDS)).default(3600),
    DEFAULT_MODEL: defaultModelVariable,
    /** The admission settings, for queue positions and start estimates. @default no positions shown */
    ADMISSION: admissionVariable.optional(),
    /**
     * The run-time model Admit uses: the start estimates time the runs by it until the dispatcher
     * has observed an account's pace, and a generation Admit has not reached yet by it.
     * @default the model's defaults
     */
    RUN_TIME_MODEL: runTimeModelVariable,
    /**
     * The web console's OIDC sign-in (`apiAuth.console` in `jwt` mode); unset, the console is not
     * served. Secrets are named by id, never given. @default none
     */
    CONSOLE_OIDC: env.json(consoleOidcEnvSchema).optional(),
  },
  dashscopeKeyCheck,
);
export type ApiConfig = ConfigOf<typeof apiSpec.variables>;
