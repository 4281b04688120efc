import { randomBytes, randomUUID } from 'node:crypto';

/** Messages the service answers for well-known codes, used when a fault gives none. */
const KNOWN_MESSAGES: Record<string, string> = {
  InvalidApiKey: 'Invalid API-key provided.',
  'Throttling.RateQuota': 'Requests rate limit exceeded, please try again later.',
  'Throttling.AllocationQuota': 'Free allocated quota exceeded.',
  InternalError: 'An internal error has occured, please try again later or contact service support.',
  'InternalError.Timeout':
    'An internal timeout error has occured during execution, please try again later or contact service support.',
};

/** The JSON error body of every DashScope API error. */
export interface ApiErrorBody {
  code: string;
  message: string;
  request_id: string;
}

/** A fresh DashScope request id (a UUID, as in the service's answers). */
export function newRequestId(): string {
  return randomUUID();
}

/** Builds `{code, message, request_id}` with a fresh request id. */
export function apiErrorBody(code: string, message?: string): ApiErrorBody {
  return { code, message: message ?? defaultMessage(code), request_id: newRequestId() };
}

/** The service's usual message for `code`, or the code itself. */
export function defaultMessage(code: string): string {
  return KNOWN_MESSAGES[code] ?? code;
}

/** An OSS request id: 24 upper-case hex characters. */
export function newOssRequestId(): string {
  return randomBytes(12).toString('hex').toUpperCase();
}

/** The XML error document Alibaba OSS answers, e.g. for an expired pre-signed URL. */
export function ossErrorXml(code: string, message: string, requestId: string, hostId: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<Error>',
    `  <Code>${escapeXml(code)}</Code>`,
    `  <Message>${escapeXml(message)}</Message>`,
    `  <RequestId>${requestId}</RequestId>`,
    `  <HostId>${escapeXml(hostId)}</HostId>`,
    '</Error>',
    '',
  ].join('\n');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
