/**
 * Published AWS prices the benchmarks turn counts into dollars with: US East (N. Virginia), the
 * on-demand list prices of the pricing pages named on each, as published on those pages in 2025
 * (DynamoDB's on-demand prices since their cut of 1 November 2024) and assumed unchanged on
 * 2026-11-30. There is no internet on the machines that wrote this: check the pages before relying
 * on the dollar figures; the counts they come from do not change. Free tiers are left out.
 */

/**
 * AWS Step Functions, Standard workflows: $0.025 per 1,000 state transitions, retries included.
 * Source: https://aws.amazon.com/step-functions/pricing/
 */
export const USD_PER_STATE_TRANSITION = 0.025 / 1000;

/**
 * AWS Lambda on Arm (Graviton), the architecture the GenerationFunction construct uses:
 * $0.0000133334 per GB-second (first 7.5 billion GB-s a month), billed per millisecond.
 * Source: https://aws.amazon.com/lambda/pricing/
 */
export const USD_PER_LAMBDA_GB_SECOND = 0.0000133334;

/** AWS Lambda: $0.20 per 1 million requests. Source: https://aws.amazon.com/lambda/pricing/ */
export const USD_PER_LAMBDA_REQUEST = 0.2 / 1_000_000;

/**
 * Amazon DynamoDB on-demand, Standard table class: $0.625 per million write request units and
 * $0.125 per million read request units. Source: https://aws.amazon.com/dynamodb/pricing/on-demand/
 */
export const USD_PER_DYNAMODB_WRU = 0.625 / 1_000_000;
export const USD_PER_DYNAMODB_RRU = 0.125 / 1_000_000;

/**
 * Amazon S3 Standard: $0.005 per 1,000 PUT, COPY, POST or LIST requests; $0.0004 per 1,000 GET
 * and other requests; storage $0.023 per GB-month (first 50 TB); data transfer out to the
 * internet $0.09 per GB (first 10 TB, after the free 100 GB).
 * Sources: https://aws.amazon.com/s3/pricing/, https://aws.amazon.com/ec2/pricing/on-demand/
 */
export const USD_PER_S3_PUT = 0.005 / 1000;
export const USD_PER_S3_GET = 0.0004 / 1000;
export const USD_PER_S3_GB_MONTH = 0.023;
export const USD_PER_GB_OUT = 0.09;

/** Amazon EventBridge: $1.00 per million custom events published. Source: https://aws.amazon.com/eventbridge/pricing/ */
export const USD_PER_CUSTOM_EVENT = 1 / 1_000_000;

/**
 * Amazon API Gateway HTTP APIs: $1.00 per million requests (first 300 million a month), each
 * counted in 512 KB increments. Source: https://aws.amazon.com/api-gateway/pricing/
 */
export const USD_PER_HTTP_API_REQUEST = 1 / 1_000_000;

/**
 * Amazon CloudWatch: Logs ingestion (Standard class) $0.50 per GB; custom metrics $0.30 per metric
 * a month (first 10,000), prorated by the hour; standard-resolution alarms $0.10 per alarm metric a
 * month (a metric-math alarm pays for each metric it reads); dashboards $3.00 each a month.
 * Source: https://aws.amazon.com/cloudwatch/pricing/
 */
export const USD_PER_LOG_GB = 0.5;
export const USD_PER_CUSTOM_METRIC_MONTH = 0.3;
export const USD_PER_ALARM_METRIC_MONTH = 0.1;
export const USD_PER_DASHBOARD_MONTH = 3;

/** AWS X-Ray: $5.00 per million traces recorded. Source: https://aws.amazon.com/xray/pricing/ */
export const USD_PER_TRACE = 5 / 1_000_000;

/** AWS Secrets Manager: $0.40 per secret a month. Source: https://aws.amazon.com/secrets-manager/pricing/ */
export const USD_PER_SECRET_MONTH = 0.4;

/** AWS KMS: $1.00 per customer-managed key a month. Source: https://aws.amazon.com/kms/pricing/ */
export const USD_PER_KMS_KEY_MONTH = 1;
