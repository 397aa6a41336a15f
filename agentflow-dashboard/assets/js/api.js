// REST calls. Errors carry the server's message (written for people) and per-field messages.

export class ApiError extends Error {
  constructor(status, message, fields) {
    super(message);
    this.status = status;
    this.fields = fields || {};
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "The dashboard server cannot be reached. It reconnects by itself when it is back.");
  }
  if (res.status === 401) {
    location.assign("/login");
    throw new ApiError(401, "Sign in to continue.");
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = data && data.error;
    throw new ApiError(res.status, (err && err.message) || `Request failed (HTTP ${res.status}).`, err && err.fields);
  }
  return data;
}

export const post = (path, body) => api(path, { method: "POST", body });
export const put = (path, body) => api(path, { method: "PUT", body });
