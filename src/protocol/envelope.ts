/** The club's error envelope: `{"error":{"message","type"}}`, as OpenAI clients expect. */
export interface ErrorEnvelope {
  error: { message: string; type: string; code?: string | null };
}

/** Error types the club's API documents, plus the generic ones every OpenAI client knows. */
export type ErrorType =
  | "no_provider"
  | "upstream_error"
  | "async_disabled"
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "request_too_large"
  | "server_error"
  | "overloaded";

export function envelope(type: ErrorType, message: string): ErrorEnvelope {
  return { error: { message, type } };
}
