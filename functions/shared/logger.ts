import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';

/**
 * The logging surface domain code uses: Powertools Logger on Lambda (structured JSON with the
 * Lambda context), anything with the same four methods locally and in tests.
 * Log fields must never include the API key, prompts or result URLs.
 */
export interface Logger {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

/** The Lambda logger of one function; log level from `POWERTOOLS_LOG_LEVEL` (default INFO). */
export function createLambdaLogger(serviceName: string): Logger {
  const logger = new PowertoolsLogger({ serviceName });
  return {
    debug: (message, extra) => (extra ? logger.debug(message, extra) : logger.debug(message)),
    info: (message, extra) => (extra ? logger.info(message, extra) : logger.info(message)),
    warn: (message, extra) => (extra ? logger.warn(message, extra) : logger.warn(message)),
    error: (message, extra) => (extra ? logger.error(message, extra) : logger.error(message)),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
