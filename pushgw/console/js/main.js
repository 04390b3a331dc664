// The console's shell: sign-in with the API key, the hash router, and the
// live-update loop (the visible page's refresh() every few seconds, paused
// while the tab is hidden or the operator turns live updates off).

import { api, ApiError, paths, session, setUnauthorizedHandler } from "./api.js";
import { errorBox, field, fill, h, heading } from "./dom.js";
import * as overview from "./pages/overview.js";
import * as apps from "./pages/apps.js";
import * as appNew from "./pages/app-new.js";
import * as endpoints from "./pages/endpoints.js";
import * as topics from "./pages/topics.js";
import * as messages from "./pages/messages.js";
import * as failures from "./pages/failures.js";

const POLL_MS = 3000;
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const sessionBar = document.getElementById("session");
const liveStatus = document.getElementById("live-status");
const liveToggle = document.getElementById("live-toggle");

let current = null; // { refresh?, dispose? } of the page on screen
let generation = 0; // bumped on every route change: late answers are dropped
let timer = null;
let live = true;
let signedIn = false;

// -- routes -------------------------------------------------------------------
function route() {
  const raw = window.location.hash.replace(/^#/, "");
  const [pathPart, queryPart = ""] = raw.split("?");
  const parts = pathPart
    .split("/")
    .filter(Boolean)
    .map((p) => decodeURIComponent(p));
  return { parts, params: new URLSearchParams(queryPart) };
}

function pageFor(parts) {
  const [section = "overview", rest] = parts;
  switch (section) {
    case "overview":
      return [overview.render, "overview"];
    case "apps":
      if (rest === "new") return [appNew.render, "apps"];
      return [rest ? apps.renderOne : apps.render, "apps"];
    case "endpoints":
      return [rest ? endpoints.renderOne : endpoints.render, "endpoints"];
    case "topics":
      return [rest ? topics.renderOne : topics.render, "topics"];
    case "messages":
      return [rest ? messages.renderOne : messages.render, "messages"];
    case "failures":
      return [failures.render, "failures"];
    default:
      return [notFound, null];
  }
}

function notFound(ctx) {
  fill(
    ctx.main,
    heading("Not found"),
    h("p", {}, "No console page here. ", h("a", { href: "#/overview" }, "Go to the overview"), "."),
  );
}

async function show({ focus = true } = {}) {
  if (!signedIn) return;
  stopTimer();
  current?.dispose?.();
  current = null;
  generation += 1;
  const mine = generation;
  const { parts, params } = route();
  const [render, sectionName] = pageFor(parts);
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.section === sectionName) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  fill(main);
  const ctx = {
    main,
    parts,
    params,
    alive: () => mine === generation,
    // Change the hash without re-rendering (a page's own filter state).
    replaceHash(hash) {
      window.history.replaceState(null, "", hash);
    },
  };
  try {
    const page = (await render(ctx)) ?? {};
    if (!ctx.alive()) {
      page.dispose?.();
      return;
    }
    // The first load's failure is the page's (later ones only mark the
    // header's live status: the last good data stays on screen).
    if (page.refresh) await page.refresh();
    if (!ctx.alive()) return;
    current = page;
    liveStatus.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    liveStatus.classList.remove("stale");
  } catch (error) {
    if (!ctx.alive()) return;
    current = null;
    fill(
      main,
      heading(error.status === 404 ? "Not found" : "Could not load this page"),
      errorBox(error),
      h("button", { type: "button", onclick: () => show() }, "Try again"),
    );
  }
  const title = main.querySelector("h1")?.textContent;
  document.title = title ? `${title} · pushgw console` : "pushgw console";
  if (focus) main.querySelector("h1")?.focus();
  schedule();
}

// -- live updates ------------------------------------------------------------
function stopTimer() {
  if (timer !== null) window.clearTimeout(timer);
  timer = null;
}

function schedule() {
  stopTimer();
  if (live && current?.refresh && document.visibilityState === "visible") {
    timer = window.setTimeout(tick, POLL_MS);
  }
}

async function runRefresh(mine) {
  try {
    await current.refresh();
    if (mine !== generation) return;
    liveStatus.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    liveStatus.classList.remove("stale");
  } catch (error) {
    if (mine !== generation) return;
    liveStatus.textContent =
      error instanceof ApiError ? `Update failed: ${error.message}` : "Update failed";
    liveStatus.classList.add("stale");
  }
}

async function tick() {
  timer = null;
  if (!current?.refresh) return;
  await runRefresh(generation);
  schedule();
}

liveToggle.addEventListener("click", () => {
  live = !live;
  liveToggle.setAttribute("aria-pressed", String(live));
  liveStatus.textContent = live ? "Live updates on" : "Live updates paused";
  if (live) tick();
  else stopTimer();
});

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && live) tick();
  else stopTimer();
});

// -- signing in ----------------------------------------------------------------
/** What the key may do: "admin", "forbidden" (valid, not admin), or throws. */
async function checkAccess(key) {
  try {
    await api("GET", paths.queue, { key });
    return "admin";
  } catch (error) {
    if (error.status === 403) return "forbidden";
    throw error;
  }
}

function signedOut() {
  signedIn = false;
  stopTimer();
  current?.dispose?.();
  current = null;
  nav.hidden = true;
  sessionBar.hidden = true;
}

function showLogin(message) {
  signedOut();
  const input = h("input", {
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const keyField = field("API key", input, {
    name: "key",
    hint: "A key of [[auth.api_keys]] with admin = true. It stays in this tab (session storage) and goes to the daemon as Authorization: Bearer.",
  });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card login", "aria-labelledby": "login-title" });
  form.append(keyField.el, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      keyField.error("Enter the API key.");
      input.focus();
      return;
    }
    submit.setAttribute("aria-busy", "true");
    try {
      const access = await checkAccess(key);
      if (access === "forbidden") {
        showForbidden();
        return;
      }
      session.key = key;
      enter();
    } catch (error) {
      keyField.error(
        error.status === 401 ? "The daemon does not know this key (401)." : error.message,
      );
      input.focus();
    } finally {
      submit.removeAttribute("aria-busy");
    }
  });
  fill(
    main,
    h("h1", { tabindex: "-1", id: "login-title" }, "Sign in"),
    message ? h("div", { class: "notice error", role: "alert" }, message) : null,
    form,
  );
  document.title = "Sign in · pushgw console";
  input.focus();
}

function showForbidden() {
  signedOut();
  session.clear();
  fill(
    main,
    h("h1", { tabindex: "-1" }, "Not allowed"),
    h(
      "div",
      { class: "notice error", role: "alert" },
      "This key is valid but is not an admin key: the daemon refused it (403) on the admin API.",
    ),
    h(
      "p",
      {},
      "The console shows the whole gateway (queue, ledger, dead letters), so it needs a key with ",
      h("code", {}, "admin = true"),
      " in ",
      h("code", {}, "[[auth.api_keys]]"),
      ". A publish-only key keeps working for its own actions through the JSON API.",
    ),
    h("button", { type: "button", onclick: () => showLogin() }, "Use another key"),
  );
  document.title = "Not allowed · pushgw console";
  main.querySelector("h1").focus();
}

/** Show the console; `focus`: move focus to the page heading (not on a fresh
 * load, where a keyboard user starts at the top, at the skip link). */
function enter({ focus = true } = {}) {
  signedIn = true;
  nav.hidden = false;
  sessionBar.hidden = false;
  if (!window.location.hash.startsWith("#/")) {
    window.history.replaceState(null, "", "#/overview");
  }
  show({ focus });
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.clear();
  showLogin();
});

document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h1") ?? main).focus();
});

window.addEventListener("hashchange", () => {
  if (window.location.hash.startsWith("#/")) show();
});

setUnauthorizedHandler(() => {
  session.clear();
  showLogin("The daemon no longer accepts the key (401). Sign in again.");
});

async function boot() {
  const key = session.key;
  if (!key) {
    showLogin();
    return;
  }
  try {
    const access = await checkAccess(key);
    if (access === "forbidden") showForbidden();
    else enter({ focus: false });
  } catch (error) {
    if (error.status === 401) {
      session.clear();
      showLogin("The daemon no longer accepts the key (401). Sign in again.");
    } else {
      showLogin(error.message);
    }
  }
}

boot();
