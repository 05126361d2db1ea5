// REST calls: one function, JSON in and out, errors as HttpError with the
// server's words (docs/API.md: every error is {"error": ...}).

export class HttpError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new HttpError(0, "Cannot reach the server. Check your connection and try again.");
  }
  let data = {};
  try { data = await response.json(); } catch (e) { /* empty or not JSON */ }
  if (!response.ok) {
    throw new HttpError(response.status, data.error || `HTTP ${response.status}`, data.code);
  }
  return data;
}
