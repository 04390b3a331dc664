// Topics and subscriptions: topics (paged), every subscription with its
// confirmation state (HTTP/HTTPS ones are "PendingConfirmation" until the
// subscriber confirms, as in SNS), and one topic's attributes, subscriptions,
// subscribe / unsubscribe and a test publish.

import { api, arnTail, paths, recentMessages } from "../api.js";
import {
  actionButton,
  announce,
  badge,
  confirmDialog,
  details,
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

const topicHash = (arn) => `#/topics/${encodeURIComponent(arn)}`;
const PENDING = "PendingConfirmation";

function subscriptionState(sub) {
  return sub.subscriptionArn === PENDING ? badge("Pending confirmation", "warn") : badge("Confirmed", "good");
}

function target(sub) {
  if (sub.protocol === "application") {
    return h("a", { href: `#/endpoints/${encodeURIComponent(sub.endpoint)}` }, mono(arnTail(sub.endpoint), { max: 24 }));
  }
  return mono(sub.endpoint, { max: 60 });
}

export async function render(ctx) {
  const topics = liveRegion({ class: "region" });
  const topicPages = pager("Topic pages", () => refresh());
  const subs = liveRegion({ class: "region" });
  const subPages = pager("Subscription pages", () => refresh());

  const name = h("input", { type: "text", name: "topicName", autocomplete: "off", spellcheck: "false", required: true });
  const nameField = field("Topic name", name, { hint: "Letters, digits, '-' and '_', up to 256" });
  const createForm = h("form", { class: "inline-form" }, nameField.el, h("button", { type: "submit" }, "Create topic"));
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    nameField.error(null);
    try {
      const made = await api("POST", paths.topics, { body: { name: name.value.trim() } });
      announce(`Topic ${arnTail(made.topicArn)} created.`);
      window.location.hash = topicHash(made.topicArn);
    } catch (error) {
      nameField.error(`${error.code}: ${error.message}`);
      name.focus();
    }
  });

  fill(
    ctx.main,
    heading("Topics and subscriptions"),
    h("details", { class: "card" }, h("summary", {}, "Create a topic"), createForm),
    section("Topics", topics.el, topicPages.el),
    section("All subscriptions", subs.el, subPages.el),
  );

  async function refresh() {
    const [topicPage, subPage] = await Promise.all([
      api("GET", paths.topics, { query: { nextToken: topicPages.token } }),
      api("GET", paths.subscriptions, { query: { nextToken: subPages.token } }),
    ]);
    if (!ctx.alive()) return;
    topicPages.next = topicPage.nextToken;
    subPages.next = subPage.nextToken;
    topics.update(topicPage.topics, (rows) =>
      table({
        caption: "Topics",
        empty: "No topic yet.",
        rows,
        columns: [
          { label: "Name", cell: (t) => h("a", { href: topicHash(t.topicArn) }, arnTail(t.topicArn)) },
          { label: "ARN", cell: (t) => mono(t.topicArn, { max: 70 }) },
        ],
      }),
    );
    subs.update(subPage.subscriptions, (rows) =>
      table({
        caption: "Subscriptions",
        empty: "No subscription yet.",
        rows,
        columns: [
          { label: "Topic", cell: (s) => h("a", { href: topicHash(s.topicArn) }, arnTail(s.topicArn)) },
          { label: "Protocol", cell: (s) => s.protocol },
          { label: "Endpoint", cell: target },
          { label: "State", cell: subscriptionState },
        ],
      }),
    );
  }

  return { refresh };
}

export async function renderOne(ctx) {
  const arn = ctx.parts[1];
  const attributes = liveRegion({ class: "region" });
  const subs = liveRegion({ class: "region" });
  const pages = pager("Subscription pages", () => refresh());
  const status = h("div", { class: "region" });

  // Subscribe (application endpoint or an http/https URL).
  const protocol = h(
    "select",
    { name: "protocol" },
    ["application", "https", "http"].map((p) => h("option", { value: p }, p)),
  );
  const endpoint = h("input", { type: "text", name: "subscriptionEndpoint", autocomplete: "off", spellcheck: "false", required: true });
  const endpointField = field("Endpoint ARN or URL", endpoint, {
    hint: "application: an endpoint ARN; http/https: the subscriber's URL, which gets a SubscriptionConfirmation",
  });
  const subscribeForm = h(
    "form",
    { class: "stack" },
    h("div", { class: "grid-fields" }, field("Protocol", protocol).el, endpointField.el),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Subscribe")),
  );
  subscribeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    endpointField.error(null);
    try {
      const made = await api("POST", paths.topicSubscriptions(arn), {
        body: { protocol: protocol.value, endpointArn: endpoint.value.trim() },
      });
      endpoint.value = "";
      announce(made.subscriptionArn === "pending confirmation" ? "Subscribed; pending confirmation." : "Subscribed.");
      await refresh();
    } catch (error) {
      endpointField.error(`${error.code}: ${error.message}`);
      endpoint.focus();
    }
  });

  // A test publish to the topic.
  const message = h("textarea", { name: "topicMessage", rows: "2" });
  message.value = "Test message from the pushgw console";
  const messageField = field("Message", message);
  const publishStatus = h("div", { class: "region", role: "status" });
  const publishForm = h("form", { class: "stack" }, messageField.el, h("div", { class: "actions" }, h("button", { type: "submit" }, "Publish to topic")), publishStatus);
  publishForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    messageField.error(null);
    try {
      const sent = await api("POST", paths.publish, { body: { topicArn: arn, message: message.value } });
      recentMessages.add({ id: sent.messageId, target: arn, at: new Date().toISOString() });
      fill(publishStatus, notice(["Published: ", h("a", { href: `#/messages/${encodeURIComponent(sent.messageId)}` }, "follow message ", sent.messageId)], "good"));
    } catch (error) {
      messageField.error(`${error.code}: ${error.message}`);
    }
  });

  fill(
    ctx.main,
    heading(`Topic ${arnTail(arn)}`, actionButton("Delete topic", remove, { class: "danger" })),
    h("p", { class: "sub" }, h("code", { class: "mono" }, arn)),
    status,
    attributes.el,
    section("Subscriptions", subs.el, pages.el),
    h("details", { class: "card" }, h("summary", {}, "Subscribe"), subscribeForm),
    h("details", { class: "card" }, h("summary", {}, "Publish a test message"), publishForm),
  );

  async function unsubscribe(sub) {
    const ok = await confirmDialog({
      title: "Unsubscribe?",
      text: `${sub.protocol} subscription of ${sub.endpoint} stops receiving this topic's messages.`,
      confirm: "Unsubscribe",
    });
    if (!ok) return;
    try {
      await api("DELETE", paths.subscription(sub.subscriptionArn));
      announce("Unsubscribed.");
      await refresh();
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function remove() {
    const ok = await confirmDialog({
      title: `Delete topic ${arnTail(arn)}?`,
      text: "DeleteTopic removes the topic and all its subscriptions.",
      confirm: "Delete topic",
    });
    if (!ok) return;
    try {
      await api("DELETE", paths.topic(arn));
      announce("Topic deleted.");
      window.location.hash = "#/topics";
    } catch (error) {
      fill(status, errorBox(error));
    }
  }

  async function refresh() {
    const [got, page] = await Promise.all([
      api("GET", paths.topic(arn)),
      api("GET", paths.topicSubscriptions(arn), { query: { nextToken: pages.token } }),
    ]);
    if (!ctx.alive()) return;
    pages.next = page.nextToken;
    attributes.update(got.attributes, (a) => {
      const counts = ["SubscriptionsConfirmed", "SubscriptionsPending", "SubscriptionsDeleted"];
      const long = ["Policy", "DeliveryPolicy", "EffectiveDeliveryPolicy"];
      const rest = Object.entries(a).filter(([k]) => !counts.includes(k) && !long.includes(k) && k !== "TopicArn");
      return [
        h(
          "div",
          { class: "stat-cards" },
          counts.map((k) => h("div", { class: "stat" }, h("span", { class: "label" }, k.replace("Subscriptions", "")), h("span", { class: "value" }, a[k] ?? "0"))),
        ),
        details(rest),
        long
          .filter((k) => a[k])
          .map((k) => h("details", {}, h("summary", {}, k), h("pre", { class: "json" }, pretty(a[k])))),
      ];
    });
    subs.update(page.subscriptions, (rows) =>
      table({
        caption: `Subscriptions of ${arnTail(arn)}`,
        empty: "No subscription.",
        rows,
        columns: [
          { label: "Protocol", cell: (s) => s.protocol },
          { label: "Endpoint", cell: target },
          { label: "State", cell: subscriptionState },
          {
            label: "Action",
            cell: (s) =>
              s.subscriptionArn === PENDING
                ? h("span", { class: "hint" }, "Awaiting the subscriber's confirmation")
                : actionButton(
                    ["Unsubscribe", h("span", { class: "visually-hidden" }, ` ${s.endpoint}`)],
                    () => unsubscribe(s),
                    { class: "quiet small", dataset: { focus: `unsub-${s.subscriptionArn}` } },
                  ),
          },
        ],
      }),
    );
  }

  return { refresh };
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
