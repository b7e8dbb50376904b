/** An error with its place in the API's envelope: HTTP status, stable code, safe message. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const validationError = (fields: { field: string; message: string }[]) =>
  new ApiError(400, "VALIDATION_ERROR", fields.map((f) => `${f.field}: ${f.message}`).join("; ") || "invalid request", { fields });

export const unavailable = (dependency: "database" | "ledger" | "email", retryAfterSeconds = 5) =>
  new ApiError(
    503,
    "SERVICE_UNAVAILABLE",
    `the ${dependency} is unavailable; try again shortly`,
    { dependency },
    { "Retry-After": String(retryAfterSeconds) },
  );

export function envelope(code: string, message: string, requestId: string, details?: Record<string, unknown>) {
  return { success: false as const, error: { code, message, ...(details ? { details } : {}), requestId } };
}
