// Platform applications: the list (paged by NextToken) and one application's
// attributes, enabled state and credential expiry, with enable/disable and
// delete. Creating one is the helper in app-new.js.

import { api, forgetApps, parseAppArn, paths } from "../api.js";
import {
  actionButton,
  announce,
  badge,
  confirmDialog,
  details,
  enabledBadge,
  errorBox,
  fill,
  h,
  heading,
  liveRegion,
  pager,
  section,
  table,
  time,
} from "../dom.js";

const appHash = (arn) => `#/apps/${encodeURIComponent(arn)}`;
export const endpointsHash = (arn) => `#/endpoints?app=${encodeURIComponent(arn)}`;

export function credentialExpiry(attributes) {
  const iso = attributes.AppleCertificateExpiryDate;
  if (!iso) return attributes.AuthenticationMethod === "Token" ? "No expiry (token key)" : "—";
  const days = Math.floor((Date.parse(iso) - Date.now()) / 86_400_000);
  const when = time(iso);
  if (days < 0) return [when, " ", badge("Expired", "bad")];
  if (days < 30) return [when, " ", badge(`${days} days left`, "warn")];
  return when;
}

export async function render(ctx) {
  const list = liveRegion({ class: "region" });
  const pages = pager("Applications pages", () => refresh());
  fill(
    ctx.main,
    heading("Platform applications", h("a", { class: "button", href: "#/apps/new" }, "Create application")),
    list.el,
    pages.el,
  );

  async function refresh() {
    const page = await api("GET", paths.apps, { query: { nextToken: pages.token } });
    if (!ctx.alive()) return;
    pages.next = page.nextToken;
    list.update(page.platformApplications, drawList);
  }

  return { refresh };
}

function drawList(apps) {
  return table({
    caption: "Platform applications",
    empty: "No platform application yet. Create one to register endpoints.",
    rows: apps,
    columns: [
      {
        label: "Name",
        cell: (a) => h("a", { href: appHash(a.platformApplicationArn) }, parseAppArn(a.platformApplicationArn).name),
      },
      { label: "Platform", cell: (a) => parseAppArn(a.platformApplicationArn).platform },
      { label: "State", cell: (a) => enabledBadge(a.attributes.Enabled !== "false") },
      { label: "Authentication", cell: (a) => a.attributes.AuthenticationMethod ?? "—" },
      { label: "Credential expiry", cell: (a) => credentialExpiry(a.attributes) },
      {
        label: "Endpoints",
        cell: (a) =>
          h(
            "a",
            { href: endpointsHash(a.platformApplicationArn) },
            "Endpoints",
            h("span", { class: "visually-hidden" }, ` of ${parseAppArn(a.platformApplicationArn).name}`),
          ),
      },
    ],
  });
}

export async function renderOne(ctx) {
  const arn = ctx.parts[1];
  const { name, platform } = parseAppArn(arn);
  const body = liveRegion({ class: "region" });
  const status = h("div", { class: "region" });
  fill(
    ctx.main,
    heading(name, h("a", { class: "button quiet", href: endpointsHash(arn) }, "Endpoints")),
    h("p", { class: "sub" }, platform, " application · ", h("code", { class: "mono" }, arn)),
    status,
    body.el,
  );

  async function setEnabled(enabled) {
    fill(status);
    try {
      await api("PATCH", paths.app(arn), { body: { attributes: { Enabled: String(enabled) } } });
      forgetApps();
      announce(`Application ${name} ${enabled ? "enabled" : "disabled"}.`);
      await refresh();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function remove() {
    const ok = await confirmDialog({
      title: `Delete ${name}?`,
      text: "The application and all its endpoints are deleted (DeletePlatformApplication). Queued deliveries to them are dropped.",
      confirm: "Delete application",
    });
    if (!ok) return;
    try {
      await api("DELETE", paths.app(arn));
      forgetApps();
      announce(`Application ${name} deleted.`);
      window.location.hash = "#/apps";
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function refresh() {
    let got;
    try {
      got = await api("GET", paths.app(arn));
    } catch (error) {
      if (!ctx.alive()) return;
      body.update({ error: error.message }, () => errorBox(error));
      if (error.status === 404) return;
      throw error;
    }
    if (!ctx.alive()) return;
    body.update(got.attributes, (attributes) => {
      const enabled = attributes.Enabled !== "false";
      const rest = Object.entries(attributes)
        .filter(([k]) => !["Enabled", "AppleCertificateExpiryDate"].includes(k))
        .sort(([a], [b]) => a.localeCompare(b));
      return [
        section(
          "State",
          details([
            ["Enabled", enabledBadge(enabled)],
            ["Credential expiry", credentialExpiry(attributes)],
          ]),
          enabled
            ? null
            : h(
                "p",
                { class: "hint" },
                "A disabled application takes no publishes (PlatformApplicationDisabled); its queued jobs wait. New valid credentials, or enabling it, resume them.",
              ),
          h(
            "div",
            { class: "actions" },
            actionButton(enabled ? "Disable application" : "Enable application", () => setEnabled(!enabled), {
              dataset: { focus: "toggle" },
              class: enabled ? "quiet" : "",
            }),
            actionButton("Delete application", remove, { class: "danger", dataset: { focus: "delete" } }),
          ),
        ),
        section("Attributes", rest.length ? details(rest.map(([k, v]) => [k, h("span", { class: "wrap" }, v)])) : h("p", {}, "No other attributes.")),
      ];
    });
  }

  return { refresh };
}
