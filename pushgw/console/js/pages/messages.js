// Messages: one message's delivery progress by platform and outcome, live
// (GET /v1/messages/{id}), with the delivery records the ledger kept for it
// (GET /v1/deliveries?message=…): every failure and the sampled successes.

import { api, arnTail, paths, recentMessages } from "../api.js";
import { badge, details, errorBox, field, fill, h, heading, liveRegion, mono, notice, num, section, table, time } from "../dom.js";

/** What a ledger record says, in one phrase: { state, text }. */
export function summarize(record) {
  const totals = record.totals ?? {};
  const delivered = totals.delivered ?? 0;
  const failed = totals.failed ?? 0;
  const expired = totals.expired ?? 0;
  const reasons = [
    ...new Set((record.counts ?? []).filter((c) => c.status !== "delivered" && c.failureType).map((c) => c.failureType)),
  ];
  if (record.pendingJobs > 0) {
    const pending = totals.pending ?? 0;
    const fanout = fanoutText(record.pendingFanout);
    return {
      state: "pending",
      text: `Pending: ${num(pending)} deliver${pending === 1 ? "y" : "ies"} queued${fanout ? `, fan-out to ${fanout}` : ""}; ${num(delivered)} delivered, ${num(failed + expired)} failed so far`,
    };
  }
  if (!delivered && !failed && !expired) return { state: "pending", text: "Accepted; no delivery recorded yet" };
  if (failed || expired) {
    const what = expired && !failed ? "Expired" : "Failed";
    const count = delivered ? `${num(delivered)} delivered, ${num(failed + expired)} ${what.toLowerCase()}` : what;
    return { state: delivered ? "partial" : "failed", text: `${count}${reasons.length ? `: ${reasons.join(", ")}` : ""}` };
  }
  return { state: "delivered", text: delivered === 1 ? "Delivered" : `Delivered to ${num(delivered)}` };
}

/** A topic fan-out not expanded yet, as "N subscriptions" ("N+": more than
 * the daemon counted); "" when there is none. They are deliveries to come at
 * most: filter policies and deleted endpoints are judged when they run. */
export function fanoutText(fanout) {
  if (!fanout?.chunks) return "";
  return `${num(fanout.subscriptions)}${fanout.more ? "+" : ""} more subscription${fanout.subscriptions === 1 && !fanout.more ? "" : "s"}`;
}

const STATUS_KIND = { delivered: "good", failed: "bad", expired: "warn", pending: "neutral" };

export function statusBadge(status) {
  return badge(status, STATUS_KIND[status] ?? "neutral");
}

/** Delivery records as a table (endpoint, message columns optional). */
export function deliveriesTable(rows, { caption, endpoint = true, message = true, select } = {}) {
  const columns = [
    { label: "When", cell: (d) => time(d.at) },
    { label: "Status", cell: (d) => statusBadge(d.status) },
    { label: "Reason", cell: (d) => [d.failureType ? h("strong", {}, d.failureType) : null, d.failureType && d.reason ? " " : null, d.reason ? h("span", { class: "wrap" }, d.reason) : null] },
    { label: "Provider", cell: (d) => (d.providerStatus ?? "—").toString(), class: "n" },
    { label: "Attempts", cell: (d) => num(d.attempts), class: "n" },
  ];
  if (endpoint) {
    columns.splice(2, 0, {
      label: "Endpoint",
      cell: (d) => (d.endpointArn ? h("a", { href: `#/endpoints/${encodeURIComponent(d.endpointArn)}` }, mono(arnTail(d.endpointArn), { max: 13 })) : "—"),
    });
    if (!select) columns.splice(3, 0, { label: "Platform", cell: (d) => d.platform ?? "—" });
  }
  if (message) {
    columns.push({ label: "Message", cell: (d) => h("a", { href: `#/messages/${encodeURIComponent(d.messageId)}` }, mono(d.messageId, { max: 13 })) });
  }
  columns.push({
    label: "Dead letter",
    cell: (d) => (d.deadLetter ? (d.replayedAt ? ["Replayed ", time(d.replayedAt)] : badge("Not replayed", "warn")) : "No"),
  });
  if (select) columns.unshift(select);
  return table({ caption, rows, columns, empty: "No delivery recorded.", rowKey: (d) => String(d.id) });
}

export async function render(ctx) {
  const input = h("input", { type: "text", name: "messageId", autocomplete: "off", spellcheck: "false", required: true });
  const idField = field("Message ID", input, { hint: "The MessageId that Publish answered" });
  const form = h("form", { class: "card search", role: "search", "aria-label": "Find a message" }, idField.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Show message")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = input.value.trim();
    if (!id) {
      idField.error("Enter a message ID.");
      input.focus();
      return;
    }
    window.location.hash = `#/messages/${encodeURIComponent(id)}`;
  });
  const recent = recentMessages.list();
  fill(
    ctx.main,
    heading("Messages"),
    form,
    section(
      "Sent from this tab",
      table({
        caption: "Test pushes sent from this tab",
        empty: "No test push sent from this tab yet (endpoint pages have a “Send a test push” form).",
        rows: recent,
        columns: [
          { label: "Message", cell: (m) => h("a", { href: `#/messages/${encodeURIComponent(m.id)}` }, mono(m.id)) },
          { label: "Target", cell: (m) => mono(arnTail(m.target), { max: 24 }) },
          { label: "Sent", cell: (m) => time(m.at) },
        ],
      }),
    ),
  );
  return {};
}

export async function renderOne(ctx) {
  const id = ctx.parts[1];
  const progress = liveRegion({ class: "region" });
  const outcome = h("p", { class: "push-status", role: "status", "aria-live": "polite" }, "Loading…");
  const records = liveRegion({ class: "region" });
  fill(
    ctx.main,
    heading("Message", h("code", { class: "mono sub" }, id)),
    outcome,
    progress.el,
    section("Delivery records", h("p", { class: "hint" }, "Failures, and the successes the app samples (SuccessFeedbackSampleRate); the counts above include every delivery."), records.el),
  );
  let lastText = "";

  async function refresh() {
    const [record, deliveries] = await Promise.allSettled([
      api("GET", paths.message(id)),
      api("GET", paths.deliveries, { query: { message: id, limit: 100 } }),
    ]);
    if (!ctx.alive()) return;
    if (record.status === "fulfilled") {
      const summary = summarize(record.value);
      if (summary.text !== lastText) {
        lastText = summary.text;
        fill(outcome, h("span", { class: `outcome ${summary.state}`, dataset: { outcome: summary.state } }, summary.text));
      }
      progress.update(record.value, drawProgress);
    } else if (record.reason.status === 404) {
      fill(outcome, "The ledger has no record of this message (yet, or any more: records are pruned by age).");
      progress.update({ missing: true }, () => notice("A message is recorded once it is accepted; check the ID."));
    } else {
      progress.update({ error: record.reason.message }, () => errorBox(record.reason));
    }
    if (deliveries.status === "fulfilled") {
      records.update(deliveries.value.deliveries, (rows) => deliveriesTable(rows, { caption: "Delivery records of this message", message: false }));
    } else {
      records.update({ error: deliveries.reason.message }, () => errorBox(deliveries.reason));
    }
  }

  return { refresh };
}

function drawProgress(record) {
  const totals = record.totals ?? {};
  const done = (totals.delivered ?? 0) + (totals.failed ?? 0) + (totals.expired ?? 0);
  const bar = h("div", { class: "progress", "aria-hidden": "true" });
  for (const [key, kind] of [
    ["delivered", "good"],
    ["failed", "bad"],
    ["expired", "warn"],
  ]) {
    const part = h("span", { class: kind });
    part.style.flexGrow = String(totals[key] ?? 0);
    bar.append(part);
  }
  if (record.pendingJobs) {
    const part = h("span", { class: "pending" });
    const pending = (totals.pending ?? 0) + (record.pendingFanout?.subscriptions ?? 0);
    part.style.flexGrow = String(Math.max(pending, done * 0.02));
    bar.append(part);
  }
  return [
    details([
      ["Target", record.targetArn ? h("a", { href: `#/endpoints/${encodeURIComponent(record.targetArn)}` }, mono(record.targetArn)) : "—"],
      ["Topic", record.topicArn ? h("a", { href: `#/topics/${encodeURIComponent(record.topicArn)}` }, mono(record.topicArn)) : "—"],
      ["Accepted", time(record.createdAt)],
      ["First attempt", time(record.firstAttemptAt)],
      ["Last attempt", time(record.lastAttemptAt)],
      ["Jobs still queued", num(record.pendingJobs)],
      ["Fan-out to go", fanoutText(record.pendingFanout) || "—"],
    ]),
    h(
      "div",
      { class: "stat-cards" },
      ["delivered", "failed", "expired", "pending"].map((key) =>
        h("div", { class: `stat ${STATUS_KIND[key]}` }, h("span", { class: "label" }, key[0].toUpperCase() + key.slice(1)), h("span", { class: "value" }, num(totals[key] ?? 0))),
      ),
    ),
    done || record.pendingJobs ? bar : null,
    table({
      caption: "Deliveries by platform and outcome",
      empty: "No delivery counted yet.",
      rows: record.counts ?? [],
      columns: [
        { label: "Platform", cell: (c) => c.platform ?? "not known" },
        { label: "Outcome", cell: (c) => statusBadge(c.status) },
        { label: "Failure type", cell: (c) => c.failureType ?? "—" },
        { label: "Count", cell: (c) => num(c.count), class: "n" },
      ],
    }),
  ];
}
