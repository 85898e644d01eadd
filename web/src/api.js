// The node's JSON API, as the page uses it.

/**
 * GET a JSON document of the API.
 * @param {string} path e.g. "/api/graph?skipAnon"
 * @returns {Promise<any>}
 */
export async function getJSON(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    // The API's errors are {"error": {"status", "message"}}.
    const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}
