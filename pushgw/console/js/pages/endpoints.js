// Endpoints: search an application's endpoints by token prefix or
// CustomUserData (GET …/endpoints/search, keyset pages: an app with a million
// endpoints is never loaded whole), see their state, enable or disable them,
// register one; and one endpoint's page, with a test push whose outcome is
// followed live (POST /v1/publish, then GET /v1/messages/{id}).

import { allApps, api, arnTail, parseAppArn, paths, recentMessages } from "../api.js";
import {
  actionButton,
  announce,
  confirmDialog,
  details,
  enabledBadge,
  errorBox,
  field,
  fill,
  h,
  heading,
  liveRegion,
  mono,
  notice,
  pager,
  section,
  table,
} from "../dom.js";
import { deliveriesTable, summarize } from "./messages.js";

const endpointHash = (arn) => `#/endpoints/${encodeURIComponent(arn)}`;
const PAGE_SIZES = ["25", "50", "100"];

async function setEnabled(arn, enabled) {
  await api("PATCH", paths.endpoint(arn), { body: { attributes: { Enabled: String(enabled) } } });
  announce(`Endpoint ${arnTail(arn)} ${enabled ? "enabled" : "disabled"}.`);
}

export async function render(ctx) {
  const { apps } = await allApps();
  if (!ctx.alive()) return {};
  if (!apps.length) {
    fill(
      ctx.main,
      heading("Endpoints"),
      notice("No platform application yet: endpoints belong to one."),
      h("a", { class: "button", href: "#/apps/new" }, "Create application"),
    );
    return {};
  }
  const params = ctx.params;
  const appSelect = h(
    "select",
    { name: "app" },
    apps.map((a) =>
      h("option", { value: a.platformApplicationArn }, `${parseAppArn(a.platformApplicationArn).name} (${parseAppArn(a.platformApplicationArn).platform})`),
    ),
  );
  const wanted = params.get("app");
  if (wanted && apps.some((a) => a.platformApplicationArn === wanted)) appSelect.value = wanted;
  const prefix = h("input", { type: "search", name: "tokenPrefix", value: params.get("tokenPrefix") ?? "", autocomplete: "off", spellcheck: "false" });
  const userData = h("input", { type: "search", name: "customUserData", value: params.get("customUserData") ?? "", autocomplete: "off" });
  const size = h("select", { name: "limit" }, PAGE_SIZES.map((n) => h("option", { value: n }, n)));
  size.value = PAGE_SIZES.includes(params.get("limit")) ? params.get("limit") : "25";

  const searchForm = h(
    "form",
    { class: "card search", role: "search", "aria-label": "Search endpoints" },
    h(
      "div",
      { class: "grid-fields" },
      field("Application", appSelect).el,
      field("Token prefix", prefix, { hint: "The first characters of the device token" }).el,
      field("CustomUserData", userData, { hint: "Exactly equal" }).el,
      field("Page size", size).el,
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")),
  );
  const summary = h("p", { class: "sub", "aria-live": "polite" });
  const results = liveRegion({ class: "region" });
  const status = h("div", { class: "region" });
  const pages = pager("Endpoint pages", () => refresh());

  // Register an endpoint (CreatePlatformEndpoint).
  const token = h("input", { type: "text", name: "token", autocomplete: "off", spellcheck: "false", required: true });
  const newData = h("input", { type: "text", name: "newCustomUserData", autocomplete: "off" });
  const tokenField = field("Device token", token);
  const registerStatus = h("div", { class: "region", role: "status" });
  const registerForm = h(
    "form",
    { class: "stack" },
    h("div", { class: "grid-fields" }, tokenField.el, field("CustomUserData (optional)", newData).el),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Register endpoint")),
    registerStatus,
  );
  registerForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    tokenField.error(null);
    if (!token.value.trim()) {
      tokenField.error("Enter the device token.");
      token.focus();
      return;
    }
    try {
      const made = await api("POST", paths.appEndpoints(appSelect.value), {
        body: { token: token.value.trim(), customUserData: newData.value || undefined },
      });
      fill(registerStatus, notice(["Registered ", h("a", { href: endpointHash(made.endpointArn) }, arnTail(made.endpointArn)), "."], "good"));
      announce("Endpoint registered.");
      token.value = "";
      newData.value = "";
      await refresh();
    } catch (error) {
      tokenField.error(`${error.code}: ${error.message}`);
      token.focus();
    }
  });

  // The search last submitted: the 3 s refresh repeats it, not a half-typed form.
  const readSearch = () => ({ app: appSelect.value, tokenPrefix: prefix.value, customUserData: userData.value, limit: size.value });
  let applied = readSearch();

  fill(
    ctx.main,
    heading("Endpoints"),
    searchForm,
    summary,
    status,
    results.el,
    pages.el,
    h("details", { class: "card" }, h("summary", {}, "Register an endpoint"), registerForm),
  );

  function keepInHash() {
    const query = new URLSearchParams({ app: appSelect.value });
    if (prefix.value) query.set("tokenPrefix", prefix.value);
    if (userData.value) query.set("customUserData", userData.value);
    if (size.value !== "25") query.set("limit", size.value);
    ctx.replaceHash(`#/endpoints?${query}`);
  }

  searchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    pages.reset();
    results.reset();
    keepInHash();
    applied = readSearch();
    await refresh();
    announce(summary.textContent);
  });
  appSelect.addEventListener("change", () => searchForm.requestSubmit());

  async function toggle(endpoint) {
    fill(status);
    try {
      await setEnabled(endpoint.endpointArn, endpoint.attributes.Enabled === "false");
      await refresh();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function refresh() {
    const { app, ...search } = applied;
    const page = await api("GET", paths.searchEndpoints(app), { query: { ...search, nextToken: pages.token } });
    if (!ctx.alive()) return;
    pages.next = page.nextToken;
    const n = page.endpoints.length;
    const filtered = search.tokenPrefix || search.customUserData;
    const more = page.nextToken ? " (more on the next pages)" : "";
    summary.textContent = `${n}${filtered ? " matching" : ""} endpoint${n === 1 ? "" : "s"} on this page${more}.`;
    results.update(page.endpoints, (rows) =>
      table({
        caption: `Endpoints of ${parseAppArn(app).name}`,
        empty: filtered ? "No endpoint matches." : "This application has no endpoint yet.",
        rows,
        columns: [
          { label: "Token", cell: (e) => h("a", { href: endpointHash(e.endpointArn) }, mono(e.attributes.Token, { max: 40 })) },
          { label: "State", cell: (e) => enabledBadge(e.attributes.Enabled !== "false") },
          { label: "CustomUserData", cell: (e) => e.attributes.CustomUserData ?? "—" },
          {
            label: "Action",
            cell: (e) => {
              const enabled = e.attributes.Enabled !== "false";
              return actionButton(
                [enabled ? "Disable" : "Enable", h("span", { class: "visually-hidden" }, ` endpoint ${arnTail(e.endpointArn)}`)],
                () => toggle(e),
                { class: "quiet small", dataset: { focus: `toggle-${e.endpointArn}` } },
              );
            },
          },
        ],
      }),
    );
  }

  return { refresh };
}

export async function renderOne(ctx) {
  const arn = ctx.parts[1];
  const appArn = arn.replace(":endpoint/", ":app/").split("/").slice(0, 3).join("/");
  const { name: appName, platform } = parseAppArn(appArn);
  const state = liveRegion({ class: "region" });
  const status = h("div", { class: "region" });
  const history = liveRegion({ class: "region" });

  const message = h("textarea", { name: "message", rows: "3" });
  message.value = "Test push from the pushgw console";
  const messageField = field("Message", message, { hint: "Sent as Publish with TargetArn = this endpoint; the platform's default payload is built from it." });
  const pushStatus = h("div", { class: "push-status", role: "status", "aria-live": "polite" }, "No test push sent yet.");
  const pushForm = h(
    "form",
    { class: "stack" },
    messageField.el,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Send test push")),
    pushStatus,
  );
  let push = null; // { id, final, text }

  pushForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    messageField.error(null);
    try {
      const sent = await api("POST", paths.publish, { body: { targetArn: arn, message: message.value } });
      push = { id: sent.messageId, final: false, text: "Accepted; waiting for the first delivery attempt" };
      recentMessages.add({ id: sent.messageId, target: arn, at: new Date().toISOString() });
      drawPush();
      await followPush();
    } catch (error) {
      messageField.error(`${error.code}: ${error.message}`);
      message.focus();
    }
  });

  function drawPush() {
    if (!push) return;
    fill(
      pushStatus,
      h("span", { class: `outcome ${push.state ?? "pending"}`, dataset: { outcome: push.state ?? "pending" } }, push.text),
      " · message ",
      h("a", { href: `#/messages/${encodeURIComponent(push.id)}` }, push.id),
    );
  }

  async function followPush() {
    if (!push || push.final) return;
    try {
      const record = await api("GET", paths.message(push.id));
      const outcome = summarize(record);
      push = { ...push, ...outcome, final: outcome.state !== "pending" };
    } catch (error) {
      if (error.status !== 404) throw error;
    }
    if (ctx.alive()) drawPush();
  }

  fill(
    ctx.main,
    heading(`Endpoint ${arnTail(arn)}`),
    h(
      "p",
      { class: "sub" },
      h("a", { href: `#/apps/${encodeURIComponent(appArn)}` }, appName),
      ` (${platform}) · `,
      h("code", { class: "mono" }, arn),
    ),
    status,
    state.el,
    section("Send a test push", pushForm),
    section("Deliveries recorded for this endpoint", h("p", { class: "hint" }, "Every failure, and the sampled successes (the app's SuccessFeedbackSampleRate)."), history.el),
  );

  async function toggle(enabled) {
    fill(status);
    try {
      await setEnabled(arn, enabled);
      await refresh();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function remove() {
    const ok = await confirmDialog({
      title: "Delete this endpoint?",
      text: "DeleteEndpoint: the device gets no more pushes until it registers again. Its subscriptions are kept, as SNS keeps them.",
      confirm: "Delete endpoint",
    });
    if (!ok) return;
    try {
      await api("DELETE", paths.endpoint(arn));
      announce("Endpoint deleted.");
      window.location.hash = `#/endpoints?app=${encodeURIComponent(appArn)}`;
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function refresh() {
    const [got, deliveries] = await Promise.allSettled([
      api("GET", paths.endpoint(arn)),
      api("GET", paths.deliveries, { query: { endpoint: arn, limit: 20 } }),
      followPush(),
    ]);
    if (!ctx.alive()) return;
    if (got.status === "fulfilled") {
      state.update(got.value.attributes, (attributes) => {
        const enabled = attributes.Enabled !== "false";
        const extra = Object.entries(attributes).filter(([k]) => !["Enabled", "Token", "CustomUserData"].includes(k));
        return [
          details([
            ["State", [enabledBadge(enabled), enabled ? "" : " — publishes to it are refused (EndpointDisabled) until it is enabled again"]],
            ["Token", h("code", { class: "wrap" }, attributes.Token)],
            ["CustomUserData", attributes.CustomUserData ?? "—"],
            ...extra,
          ]),
          h(
            "div",
            { class: "actions" },
            actionButton(enabled ? "Disable endpoint" : "Enable endpoint", () => toggle(!enabled), { class: enabled ? "quiet" : "", dataset: { focus: "toggle" } }),
            actionButton("Delete endpoint", remove, { class: "danger", dataset: { focus: "delete" } }),
          ),
        ];
      });
    } else {
      state.update({ error: got.reason.message }, () => errorBox(got.reason));
    }
    if (deliveries.status === "fulfilled") {
      history.update(deliveries.value.deliveries, (rows) => deliveriesTable(rows, { caption: "Recent deliveries of this endpoint", endpoint: false }));
    } else {
      history.update({ error: deliveries.reason.message }, () => errorBox(deliveries.reason));
    }
  }

  return { refresh };
}
