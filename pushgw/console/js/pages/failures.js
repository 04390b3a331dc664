// Failures: dead letters (deliveries that failed for good or expired, GET
// /v1/deliveries?deadLetter=true), filtered by application and reason, and
// replay (POST /v1/deliveries/replay) of the selected ones or of everything
// matching, after a confirmation. Replaying many repeats the call until the
// daemon says nothing remains, as the CLI does.

import { allApps, api, parseAppArn, paths } from "../api.js";
import { announce, confirmDialog, errorBox, field, fill, h, heading, liveRegion, notice, num, pager } from "../dom.js";
import { deliveriesTable } from "./messages.js";

const REASONS = [
  ["", "Any reason"],
  ["InvalidPlatformToken", "InvalidPlatformToken (the device is gone)"],
  ["DeliveryFailedPerm", "DeliveryFailedPerm (refused for good)"],
  ["NotificationTTLExpired", "NotificationTTLExpired (expired while retrying)"],
  ["EndpointDisabled", "EndpointDisabled"],
];
const PAGE = 50;
const REPLAY_BATCH = 1000;

export async function render(ctx) {
  const { apps } = await allApps();
  if (!ctx.alive()) return {};
  const params = ctx.params;
  const appSelect = h(
    "select",
    { name: "app" },
    h("option", { value: "" }, "All applications"),
    apps.map((a) => {
      const { name, platform } = parseAppArn(a.platformApplicationArn);
      return h("option", { value: a.platformApplicationArn }, `${name} (${platform})`);
    }),
  );
  appSelect.value = params.get("app") ?? "";
  if (appSelect.value !== (params.get("app") ?? "")) appSelect.value = "";
  const reasonSelect = h("select", { name: "reason" }, REASONS.map(([value, label]) => h("option", { value }, label)));
  reasonSelect.value = REASONS.some(([v]) => v === params.get("reason")) ? params.get("reason") : "";
  const showReplayed = h("input", { type: "checkbox", name: "replayed", checked: params.get("replayed") === "1" });

  const filterForm = h(
    "form",
    { class: "card search", role: "search", "aria-label": "Filter dead letters" },
    h(
      "div",
      { class: "grid-fields" },
      field("Application", appSelect).el,
      field("Reason", reasonSelect).el,
      h("div", { class: "field check" }, showReplayed, h("label", { for: (showReplayed.id = "show-replayed") }, "Show replayed ones too")),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply filter")),
  );
  const selected = new Set();
  const status = h("div", { class: "region", role: "status", "aria-live": "polite" });
  const list = liveRegion({ class: "region" });
  const pages = pager("Dead letter pages", () => refresh());
  const replaySelected = h("button", { type: "button", "aria-disabled": "true" }, "Replay selected");
  const replayAll = h("button", { type: "button", class: "quiet" }, "Replay all matching");
  let rows = [];
  // The filter last applied: refreshes and "Replay all matching" use it, not a
  // half-edited form.
  let applied = readForm();

  fill(
    ctx.main,
    heading("Failures"),
    h(
      "p",
      { class: "sub" },
      "Dead letters: deliveries that failed for good or expired. Replay queues each again as a delivery of the same message, through the durable queue (an audit line is logged).",
    ),
    filterForm,
    h("div", { class: "toolbar" }, replaySelected, replayAll),
    status,
    list.el,
    pages.el,
  );

  function readForm() {
    return { app: appSelect.value || undefined, reason: reasonSelect.value || undefined, showReplayed: showReplayed.checked };
  }

  // The replay call's selection: the filter, or every dead letter (since=0)
  // when no filter is set (the API wants a selection named).
  function replaySelection() {
    const { app, reason } = applied;
    return app || reason ? { app, reason } : { since: 0 };
  }

  function describeFilter() {
    const parts = [];
    if (applied.app) parts.push(`of ${parseAppArn(applied.app).name}`);
    if (applied.reason) parts.push(`with reason ${applied.reason}`);
    return parts.length ? parts.join(" ") : "of every application, any reason";
  }

  function syncButtons() {
    replaySelected.textContent = selected.size ? `Replay selected (${selected.size})` : "Replay selected";
    replaySelected.setAttribute("aria-disabled", String(!selected.size));
  }

  filterForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (appSelect.value) query.set("app", appSelect.value);
    if (reasonSelect.value) query.set("reason", reasonSelect.value);
    if (showReplayed.checked) query.set("replayed", "1");
    ctx.replaceHash(`#/failures${query.size ? `?${query}` : ""}`);
    applied = readForm();
    selected.clear();
    syncButtons();
    pages.reset();
    await refresh();
    announce(`${rows.length} dead letter${rows.length === 1 ? "" : "s"} shown.`);
  });

  replaySelected.addEventListener("click", async () => {
    if (!selected.size) return;
    const ids = [...selected];
    const ok = await confirmDialog({
      title: `Replay ${ids.length} dead letter${ids.length === 1 ? "" : "s"}?`,
      text: "Each is queued again as a delivery of its message to its endpoint. A device that is still gone fails again.",
      confirm: "Replay",
    });
    if (!ok) return;
    try {
      const done = await api("POST", paths.replay, { body: { ids } });
      selected.clear();
      syncButtons();
      const text = `Replayed ${num(done.replayed)} dead letter${done.replayed === 1 ? "" : "s"}.`;
      fill(status, notice(text, "good"));
      announce(text);
      await refresh();
    } catch (error) {
      fill(status, errorBox(error));
    }
  });

  replayAll.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: "Replay every dead letter that matches?",
      text: `Every dead letter not yet replayed ${describeFilter()} is queued again, ${num(REPLAY_BATCH)} at a time, until none is left.`,
      confirm: "Replay all",
    });
    if (!ok) return;
    let total = 0;
    try {
      for (;;) {
        const done = await api("POST", paths.replay, { body: { ...replaySelection(), limit: REPLAY_BATCH } });
        total += done.replayed;
        fill(status, `Replaying… ${num(total)} done, ${num(done.remaining)} remaining.`);
        if (!done.remaining || !done.replayed || !ctx.alive()) break;
      }
      const text = `Replayed ${num(total)} dead letter${total === 1 ? "" : "s"}.`;
      fill(status, notice(text, "good"));
      announce(text);
      await refresh();
    } catch (error) {
      fill(status, errorBox(error, `After ${num(total)} replayed: `));
    }
  });

  const selectColumn = {
    label: h("span", { class: "visually-hidden" }, "Select"),
    header: false,
    cell: (d) => {
      const box = h("input", {
        type: "checkbox",
        id: `dl-${d.id}`,
        checked: selected.has(d.id),
        disabled: Boolean(d.replayedAt),
        "aria-label": `Select dead letter ${d.id} (${d.failureType ?? d.status})`,
        dataset: { focus: `dl-${d.id}` },
      });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(d.id);
        else selected.delete(d.id);
        syncButtons();
      });
      return box;
    },
  };

  async function refresh() {
    const page = await api("GET", paths.deliveries, {
      query: {
        deadLetter: "true",
        app: applied.app,
        reason: applied.reason,
        replayed: applied.showReplayed ? undefined : "false",
        limit: PAGE,
        nextToken: pages.token,
      },
    });
    if (!ctx.alive()) return;
    pages.next = page.nextToken;
    rows = page.deliveries;
    list.update({ rows, selected: [...selected] }, () =>
      deliveriesTable(rows, {
        caption: "Dead letters, newest first",
        select: selectColumn,
      }),
    );
  }

  return { refresh };
}
