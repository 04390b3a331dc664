// The JSON API, as the console calls it: every request carries the operator's
// bearer key (kept in sessionStorage for this tab only), answers are JSON, and
// errors are ApiError with the API's own code and message. Nothing here talks to
// anything but this daemon's /v1.

const KEY_NAME = "pushgw.console.key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY_NAME);
  },
  set key(value) {
    sessionStorage.setItem(KEY_NAME, value);
  },
  clear() {
    sessionStorage.removeItem(KEY_NAME);
  },
};

let onUnauthorized = () => {};

/** Called once when a request with the stored key is refused with 401. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * One JSON API call. `query` values that are undefined, null or "" are left
 * out; `key` overrides the stored key (the sign-in check).
 */
export async function api(method, path, { body, query, key } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, String(value));
    }
  }
  const headers = { Accept: "application/json" };
  const bearer = key ?? session.key;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiError(0, "NetworkError", `The daemon did not answer: ${error.message}`);
  }
  const text = await response.text();
  let payload = null;
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null;
    }
  }
  if (!response.ok) {
    const error = payload?.error ?? {};
    const failure = new ApiError(
      response.status,
      error.code ?? `HTTP ${response.status}`,
      error.message ?? (response.statusText || "Request failed"),
    );
    if (response.status === 401 && key === undefined) onUnauthorized(failure);
    throw failure;
  }
  return payload;
}

const enc = encodeURIComponent;

// Every path the console uses (README's JSON API table and the admin API).
export const paths = {
  apps: "/v1/platform-applications",
  app: (arn) => `/v1/platform-applications/${enc(arn)}`,
  appEndpoints: (arn) => `/v1/platform-applications/${enc(arn)}/endpoints`,
  searchEndpoints: (arn) => `/v1/platform-applications/${enc(arn)}/endpoints/search`,
  endpoint: (arn) => `/v1/endpoints/${enc(arn)}`,
  topics: "/v1/topics",
  topic: (arn) => `/v1/topics/${enc(arn)}`,
  topicSubscriptions: (arn) => `/v1/topics/${enc(arn)}/subscriptions`,
  subscriptions: "/v1/subscriptions",
  subscription: (arn) => `/v1/subscriptions/${enc(arn)}`,
  publish: "/v1/publish",
  queue: "/v1/queue",
  message: (id) => `/v1/messages/${enc(id)}`,
  deliveries: "/v1/deliveries",
  replay: "/v1/deliveries/replay",
  stats: "/v1/stats/deliveries",
};

/**
 * Every platform application, following NextToken (at most `maxPages` pages of
 * 100); `truncated` says whether more were left. Cached for a few seconds, as
 * several pages ask for the list to fill their selects.
 */
let appsCache = null;
export async function allApps({ maxPages = 10, fresh = false } = {}) {
  if (!fresh && appsCache && Date.now() - appsCache.at < 5000) return appsCache.value;
  const apps = [];
  let token = null;
  let pages = 0;
  do {
    const page = await api("GET", paths.apps, { query: { nextToken: token } });
    apps.push(...page.platformApplications);
    token = page.nextToken ?? null;
    pages += 1;
  } while (token && pages < maxPages);
  const value = { apps, truncated: Boolean(token) };
  appsCache = { at: Date.now(), value };
  return value;
}

export function forgetApps() {
  appsCache = null;
}

/** "arn:aws:sns:r:a:app/GCM/name" → { platform: "GCM", name: "name" }. */
export function parseAppArn(arn) {
  const resource = arn.split(":").slice(5).join(":");
  const [, platform = "", ...name] = resource.split("/");
  return { platform, name: name.join("/") };
}

/** The last part of an ARN (a topic's name, an endpoint's id). */
export function arnTail(arn) {
  const resource = arn.split(":").slice(5).join(":");
  return resource.split("/").pop();
}

const RECENT = "pushgw.console.messages";

/** Message ids this tab sent (test pushes), newest first. */
export const recentMessages = {
  list() {
    try {
      return JSON.parse(sessionStorage.getItem(RECENT) ?? "[]");
    } catch {
      return [];
    }
  },
  add(entry) {
    const list = [entry, ...this.list().filter((m) => m.id !== entry.id)].slice(0, 20);
    sessionStorage.setItem(RECENT, JSON.stringify(list));
  },
};
