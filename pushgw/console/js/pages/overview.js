// Overview: the last hour's throughput and outcomes by platform
// (GET /v1/stats/deliveries), the backlog (GET /v1/queue), and the applications
// that need attention: disabled, or credentials expiring soon (the apps list).

import { allApps, api, parseAppArn, paths } from "../api.js";
import {
  badge,
  details,
  errorBox,
  fill,
  h,
  heading,
  liveRegion,
  num,
  section,
  svg,
  table,
  time,
} from "../dom.js";

const HOUR_S = 3600;
const BUCKET_S = 300; // 12 bars of 5 minutes
const EXPIRY_WARNING_DAYS = 30;
const STATES = ["due", "leased", "scheduled", "waiting_for_app"];
const STATE_LABELS = {
  due: "Due now",
  leased: "Being sent",
  scheduled: "Scheduled (retry)",
  waiting_for_app: "Waiting for app",
};

export async function render(ctx) {
  const traffic = liveRegion({ class: "region" });
  const backlog = liveRegion({ class: "region" });
  const attention = liveRegion({ class: "region" });
  fill(
    ctx.main,
    heading("Overview"),
    section("Last hour by platform", traffic.el),
    section("Backlog", backlog.el),
    section("Applications that need attention", attention.el),
  );

  async function refresh() {
    const since = new Date(Date.now() - HOUR_S * 1000).toISOString();
    const [stats, queue, appList] = await Promise.allSettled([
      api("GET", paths.stats, { query: { since, bucketSeconds: BUCKET_S } }),
      api("GET", paths.queue),
      allApps({ fresh: true }),
    ]);
    if (!ctx.alive()) return;
    show(traffic, stats, (value) => drawTraffic(value.buckets ?? [], since));
    show(backlog, queue, drawBacklog);
    show(attention, appList, drawAttention);
  }

  return { refresh };
}

function show(region, settled, draw) {
  if (settled.status === "fulfilled") region.update(settled.value, draw);
  else region.update({ error: settled.reason.message }, () => errorBox(settled.reason));
}

// -- traffic -------------------------------------------------------------------
function drawTraffic(buckets, since) {
  const start = Date.parse(since);
  const byPlatform = new Map();
  for (const b of buckets) {
    const row = byPlatform.get(b.platform) ?? {
      platform: b.platform,
      delivered: 0,
      failed: 0,
      expired: 0,
      bars: Array.from({ length: HOUR_S / BUCKET_S }, () => ({ ok: 0, bad: 0 })),
    };
    row.delivered += b.delivered;
    row.failed += b.failed;
    row.expired += b.expired;
    const slot = Math.floor((Date.parse(b.start) - start) / (BUCKET_S * 1000));
    const bar = row.bars[Math.min(Math.max(slot, 0), row.bars.length - 1)];
    bar.ok += b.delivered;
    bar.bad += b.failed + b.expired;
    byPlatform.set(b.platform, row);
  }
  const rows = [...byPlatform.values()].sort((a, b) => a.platform.localeCompare(b.platform));
  const total = rows.reduce((n, r) => n + r.delivered + r.failed + r.expired, 0);
  const failedAll = rows.reduce((n, r) => n + r.failed + r.expired, 0);
  return [
    h(
      "div",
      { class: "stat-cards" },
      card("Deliveries", num(total)),
      card("Per minute", (total / 60).toFixed(1)),
      card("Failed or expired", num(failedAll), failedAll ? "bad" : "good"),
    ),
    table({
      caption: "Outcomes by platform, last 60 minutes",
      empty: "No deliveries in the last hour.",
      rows,
      columns: [
        { label: "Platform", cell: (r) => r.platform },
        { label: "Delivered", cell: (r) => num(r.delivered), class: "n" },
        { label: "Failed", cell: (r) => num(r.failed), class: "n" },
        { label: "Expired", cell: (r) => num(r.expired), class: "n" },
        {
          label: "Failure rate",
          class: "n",
          cell: (r) => {
            const all = r.delivered + r.failed + r.expired;
            return all ? `${(((r.failed + r.expired) / all) * 100).toFixed(1)} %` : "—";
          },
        },
        { label: "Per 5 minutes", cell: (r) => sparkline(r), header: false },
      ],
    }),
  ];
}

function card(label, value, kind = "") {
  return h("div", { class: `stat ${kind}` }, h("span", { class: "label" }, label), h("span", { class: "value" }, value));
}

/** Bars of delivered (and failed, stacked) per 5 minutes, oldest left. */
function sparkline(row) {
  const width = 120;
  const height = 28;
  const step = width / row.bars.length;
  const peak = Math.max(1, ...row.bars.map((b) => b.ok + b.bad));
  const label = row.bars.map((b) => `${b.ok} delivered, ${b.bad} failed`).join("; ");
  const bars = row.bars.flatMap((b, i) => {
    const okH = (b.ok / peak) * height;
    const badH = (b.bad / peak) * height;
    return [
      svg("rect", { class: "bar-ok", x: i * step + 1, y: height - okH, width: step - 2, height: okH }),
      svg("rect", {
        class: "bar-bad",
        x: i * step + 1,
        y: height - okH - badH,
        width: step - 2,
        height: badH,
      }),
    ];
  });
  return svg(
    "svg",
    {
      class: "spark",
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": `${row.platform} per 5 minutes, oldest first: ${label}`,
    },
    bars,
  );
}

// -- backlog ---------------------------------------------------------------------
function drawBacklog(queue) {
  const totals = queue.totals ?? {};
  const byApp = new Map();
  for (const row of queue.backlog ?? []) {
    const key = row.appArn ?? `(${row.kind} jobs)`;
    const entry = byApp.get(key) ?? { key, appArn: row.appArn, kind: row.kind, platform: row.platform, states: {} };
    entry.states[row.state] = (entry.states[row.state] ?? 0) + row.jobs;
    byApp.set(key, entry);
  }
  return [
    h(
      "div",
      { class: "stat-cards" },
      STATES.map((s) => card(STATE_LABELS[s], num(totals[s] ?? 0), s === "waiting_for_app" && totals[s] ? "bad" : "")),
    ),
    table({
      caption: "Jobs by application and state",
      empty: "The queue is empty.",
      rows: [...byApp.values()],
      columns: [
        {
          label: "Application",
          cell: (r) =>
            r.appArn
              ? h("a", { href: `#/apps/${encodeURIComponent(r.appArn)}` }, parseAppArn(r.appArn).name)
              : r.kind === "topic"
                ? "Topic fan-out"
                : r.kind === "http"
                  ? "HTTP subscriptions"
                  : r.key,
        },
        { label: "Platform", cell: (r) => r.platform ?? "—" },
        ...STATES.map((s) => ({ label: STATE_LABELS[s], cell: (r) => num(r.states[s] ?? 0), class: "n" })),
      ],
    }),
  ];
}

// -- attention -------------------------------------------------------------------
function expiry(app) {
  const iso = app.attributes.AppleCertificateExpiryDate;
  if (!iso) return null;
  const days = (Date.parse(iso) - Date.now()) / 86_400_000;
  return { iso, days };
}

function drawAttention({ apps, truncated }) {
  const disabled = apps.filter((a) => a.attributes.Enabled === "false");
  const expiring = apps
    .map((a) => ({ app: a, exp: expiry(a) }))
    .filter(({ exp }) => exp && exp.days < EXPIRY_WARNING_DAYS)
    .sort((a, b) => a.exp.days - b.exp.days);
  const link = (app) =>
    h("a", { href: `#/apps/${encodeURIComponent(app.platformApplicationArn)}` }, parseAppArn(app.platformApplicationArn).name);
  return [
    details([
      ["Applications", num(apps.length) + (truncated ? "+ (first 1,000 shown)" : "")],
      ["Disabled", num(disabled.length)],
      [`Credentials expiring within ${EXPIRY_WARNING_DAYS} days`, num(expiring.length)],
    ]),
    h("h3", {}, "Disabled applications"),
    table({
      caption: "Disabled applications",
      empty: "No application is disabled.",
      rows: disabled,
      columns: [
        { label: "Application", cell: link },
        { label: "Platform", cell: (a) => parseAppArn(a.platformApplicationArn).platform },
        { label: "State", cell: () => badge("Disabled", "bad") },
      ],
    }),
    h("h3", {}, "Credentials expiring soon"),
    table({
      caption: "Credentials expiring soon",
      empty: `No credential expires within ${EXPIRY_WARNING_DAYS} days.`,
      rows: expiring,
      columns: [
        { label: "Application", cell: ({ app }) => link(app) },
        { label: "Expires", cell: ({ exp }) => time(exp.iso) },
        {
          label: "In",
          cell: ({ exp }) =>
            exp.days < 0 ? badge("Expired", "bad") : badge(`${Math.floor(exp.days)} days`, "warn"),
        },
      ],
    }),
  ];
}
