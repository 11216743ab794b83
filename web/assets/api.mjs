// The JSON API, with relative URLs so the page works under any path prefix.

/** A failed request: `status` 0 means the service did not answer. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** GET `path` (relative) as JSON; throws ApiError with the service's `{"error"}` message. */
export async function getJSON(path) {
  let response;
  try {
    response = await fetch(path, {
      headers: { Accept: 'application/json' }, cache: 'no-store', signal: AbortSignal.timeout(10000),
    });
  } catch (err) {
    const slow = err.name === 'TimeoutError';
    throw new ApiError(slow ? 'The service took too long to answer.' : 'The service did not answer.', 0);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(body && typeof body.error === 'string' ? body.error : `HTTP ${response.status}`, response.status);
  }
  if (body === null) throw new ApiError('The service answered something that is not JSON.', response.status);
  return body;
}

/** A polite sentence for a failed request. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong; retrying…';
  return err.status ? `The service answered: ${err.message}` : `${err.message} Retrying…`;
}
