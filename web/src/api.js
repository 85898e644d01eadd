// The node's JSON API, as the page uses it.

/** An error answer of the API: its status and message (and Retry-After). */
export class APIError extends Error {
  /**
   * @param {number} status the HTTP status
   * @param {string} message the API's message
   * @param {number | null} retryAfter seconds to wait (a 429), or null
   */
  constructor(status, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * Ask the API.
 * @param {string} path e.g. "/api/graph?skipAnon"
 * @param {RequestInit} [init] the method, a body, more headers
 * @returns {Promise<{status: number, body: any}>} a successful answer
 * @throws {APIError} for an error answer (its message is the API's)
 */
export async function send(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { accept: "application/json", ...(init.headers ?? {}) },
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
    const retry = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
    throw new APIError(response.status, message, Number.isNaN(retry) ? null : retry);
  }
  return { status: response.status, body };
}

/**
 * GET a JSON document of the API.
 * @param {string} path e.g. "/api/graph?skipAnon"
 * @returns {Promise<any>}
 * @throws {APIError} for an error answer
 */
export async function getJSON(path) {
  return (await send(path)).body;
}
