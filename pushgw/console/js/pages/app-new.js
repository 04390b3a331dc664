// The five-step helper that creates a platform application: platform → name →
// credentials → event topics and options → review. It ends in one
// POST /v1/platform-applications (CreatePlatformApplication); the API's
// validation errors are shown at the step and field they are about.

import { api, forgetApps, paths } from "../api.js";
import { announce, details, field, fill, h, heading, uid } from "../dom.js";

const APPLE = ["APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "MACOS", "MACOS_SANDBOX"];
const PLATFORMS = [
  ["APNS", "Apple Push Notification service (APNs), production"],
  ["APNS_SANDBOX", "APNs sandbox (development builds)"],
  ["APNS_VOIP", "APNs VoIP, production"],
  ["APNS_VOIP_SANDBOX", "APNs VoIP sandbox"],
  ["MACOS", "APNs for macOS, production"],
  ["MACOS_SANDBOX", "APNs for macOS, sandbox"],
  ["GCM", "Firebase Cloud Messaging (FCM; SNS calls it GCM)"],
  ["ADM", "Amazon Device Messaging (ADM)"],
  ["BAIDU", "Baidu Cloud Push"],
  ["WNS", "Windows Push Notification Services (WNS)"],
  ["MPNS", "Microsoft Push Notification Service (MPNS, retired)"],
];
const STEPS = ["Platform", "Name", "Credentials", "Events and options", "Review"];
const EVENTS = [
  ["EventEndpointCreated", "Endpoint created"],
  ["EventEndpointUpdated", "Endpoint updated"],
  ["EventEndpointDeleted", "Endpoint deleted"],
  ["EventDeliveryFailure", "Delivery failure"],
];
const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * The credential fields of a platform (and, for Apple, of an authentication
 * method): [attribute, label, { multiline, secret, hint }].
 */
function credentialFields(platform, auth) {
  if (APPLE.includes(platform)) {
    if (auth === "certificate") {
      return [
        ["PlatformPrincipal", "Certificate (PEM)", { multiline: true, hint: "-----BEGIN CERTIFICATE----- …" }],
        ["PlatformCredential", "Private key (PEM)", { multiline: true, secret: true }],
      ];
    }
    return [
      ["PlatformCredential", "Signing key (.p8)", { multiline: true, secret: true, hint: "The whole .p8 file: -----BEGIN PRIVATE KEY----- …" }],
      ["PlatformPrincipal", "Key ID", { hint: "10 characters, from the Apple developer account" }],
      ["ApplePlatformTeamID", "Team ID", { hint: "10 characters" }],
      ["ApplePlatformBundleID", "Bundle ID", { hint: "e.g. com.example.app" }],
    ];
  }
  switch (platform) {
    case "GCM":
      return [
        [
          "PlatformCredential",
          "Service-account JSON (or a legacy server key)",
          { multiline: true, secret: true, hint: "The Firebase service-account key file, pasted whole" },
        ],
      ];
    case "ADM":
      return [
        ["PlatformPrincipal", "Client ID", {}],
        ["PlatformCredential", "Client secret", { secret: true }],
      ];
    case "BAIDU":
      return [
        ["PlatformPrincipal", "API key", {}],
        ["PlatformCredential", "Secret key", { secret: true }],
      ];
    case "WNS":
      return [
        ["PlatformPrincipal", "Package SID", { hint: "ms-app://…" }],
        ["PlatformCredential", "Client secret", { secret: true }],
      ];
    default: // MPNS
      return [
        ["PlatformPrincipal", "Certificate (PEM)", { multiline: true }],
        ["PlatformCredential", "Private key (PEM)", { multiline: true, secret: true }],
      ];
  }
}

/** Which step and field an API error is about. */
function placeError(message, state) {
  for (const [key] of EVENTS) if (message.includes(key)) return [4, key];
  if (message.includes("SuccessFeedbackSampleRate")) return [4, "SuccessFeedbackSampleRate"];
  for (const key of ["ApplePlatformTeamID", "ApplePlatformBundleID"]) {
    if (message.includes(key)) return [3, key];
  }
  if (message.includes(`Invalid parameter: ${state.name} Reason`) || message.includes("Invalid parameter:  Reason")) {
    return [2, "Name"];
  }
  const certificateIsPrincipal = state.auth === "certificate" || state.platform === "MPNS";
  if (
    /PlatformPrincipal|signing key ID/.test(message) ||
    (certificateIsPrincipal && /certificate (is not|has expired)|not yet valid/.test(message))
  ) {
    return [3, "PlatformPrincipal"];
  }
  if (/Platform|credential|key|certificate|service account|Reason/i.test(message)) {
    return [3, "PlatformCredential"];
  }
  return [5, null];
}

export async function render(ctx) {
  const state = {
    step: 1,
    platform: "",
    name: "",
    auth: "token",
    creds: {},
    events: {},
    sampleRate: "",
    errors: {}, // step → { field: message }
    topics: [],
  };
  const steps = h("ol", { class: "steps" });
  const body = h("div", { class: "wizard" });
  fill(
    ctx.main,
    heading("Create a platform application"),
    h("p", { class: "sub" }, "Five steps, one CreatePlatformApplication call. Nothing is saved before the last step."),
    h("nav", { "aria-label": "Steps" }, steps),
    body,
  );
  try {
    const page = await api("GET", paths.topics);
    state.topics = page.topics.map((t) => t.topicArn);
  } catch {
    state.topics = [];
  }

  function go(step, focusField) {
    state.step = step;
    draw(focusField);
  }

  function draw(focusField) {
    fill(
      steps,
      STEPS.map((label, i) => {
        const n = i + 1;
        const done = n < state.step;
        return h(
          "li",
          { class: done ? "done" : n === state.step ? "current" : "", "aria-current": n === state.step ? "step" : null },
          h("span", { class: "n", "aria-hidden": "true" }, String(n)),
          ` ${label}`,
          done ? h("span", { class: "visually-hidden" }, " (done)") : null,
        );
      }),
    );
    const builders = [stepPlatform, stepName, stepCredentials, stepEvents, stepReview];
    const form = builders[state.step - 1](state, go);
    fill(body, form);
    const named = `[name="${focusField}"]`;
    const target = focusField ? (form.querySelector(`${named}:checked`) ?? form.querySelector(named)) : null;
    (target ?? form.querySelector("h2")).focus();
  }

  draw();
  return {};
}

function stepForm(state, title, { onNext, nextLabel = "Next", backTo }, ...content) {
  const titleId = uid("step");
  const form = h("form", { class: "card step", "aria-labelledby": titleId, novalidate: true });
  const errors = state.errors[state.step] ?? {};
  const general = errors._ ? h("div", { class: "notice error", role: "alert" }, errors._) : null;
  form.append(
    h("h2", { id: titleId, tabindex: "-1" }, `Step ${state.step} of 5: ${title}`),
    general ?? "",
    ...content.flat(),
    h(
      "div",
      { class: "actions" },
      backTo ? h("button", { type: "button", class: "quiet", onclick: backTo }, "Back") : null,
      h("button", { type: "submit" }, nextLabel),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onNext(form);
  });
  return form;
}

/** A field showing this step's error for `key`, if any. */
function withError(state, key, made) {
  const message = state.errors[state.step]?.[key];
  if (message) made.error(message);
  return made.el;
}

function stepPlatform(state, go) {
  const legendId = uid("legend");
  const group = h(
    "fieldset",
    { class: "choices", "aria-describedby": `${legendId}-error` },
    h("legend", { id: legendId }, "Push service"),
    PLATFORMS.map(([value, label]) => {
      const id = uid("platform");
      return h(
        "div",
        { class: "choice" },
        h("input", { type: "radio", name: "platform", id, value, checked: state.platform === value, required: true }),
        h("label", { for: id }, label, " ", h("code", {}, value)),
      );
    }),
  );
  const error = h("p", { class: "field-error", id: `${legendId}-error`, hidden: !state.errors[1]?.platform }, state.errors[1]?.platform ?? "");
  group.append(error);
  return stepForm(
    state,
    "Platform",
    {
      onNext(form) {
        const chosen = form.querySelector('input[name="platform"]:checked');
        if (!chosen) {
          state.errors[1] = { platform: "Choose the push service of this application." };
          return go(1, "platform");
        }
        if (chosen.value !== state.platform) state.creds = {};
        state.platform = chosen.value;
        state.errors[1] = {};
        go(2);
      },
    },
    group,
  );
}

function stepName(state, go) {
  const input = h("input", { type: "text", name: "Name", value: state.name, required: true, maxlength: "256", autocomplete: "off", spellcheck: "false" });
  const made = field("Application name", input, {
    hint: "Letters, digits, '_', '-' and '.', up to 256. The ARN is …:app/" + state.platform + "/<name>. An existing name replaces that application's credentials (as SNS does).",
  });
  return stepForm(
    state,
    "Name",
    {
      backTo: () => go(1),
      onNext() {
        const name = input.value.trim();
        state.name = name;
        let message = null;
        if (!name) message = "Enter a name.";
        else if (!NAME.test(name)) message = "Use only letters, digits, '_', '-' and '.'.";
        else if (name.length > 256) message = "At most 256 characters.";
        state.errors[2] = message ? { Name: message } : {};
        go(message ? 2 : 3, message ? "Name" : undefined);
      },
    },
    withError(state, "Name", made),
  );
}

function stepCredentials(state, go) {
  const apple = APPLE.includes(state.platform);
  const content = [];
  if (apple) {
    const legendId = uid("legend");
    content.push(
      h(
        "fieldset",
        { class: "choices inline" },
        h("legend", { id: legendId }, "Authentication"),
        [
          ["token", "Token (.p8 signing key)"],
          ["certificate", "Certificate and private key"],
        ].map(([value, label]) => {
          const id = uid("auth");
          const radio = h("input", { type: "radio", name: "auth", id, value, checked: state.auth === value });
          radio.addEventListener("change", () => {
            state.auth = value;
            state.creds = {};
            state.errors[3] = {};
            go(3, "auth");
          });
          return h("div", { class: "choice" }, radio, h("label", { for: id }, label));
        }),
      ),
    );
  }
  const inputs = {};
  for (const [key, label, options] of credentialFields(state.platform, state.auth)) {
    const input = options.multiline
      ? h("textarea", { name: key, rows: "6", spellcheck: "false", autocomplete: "off", class: "mono" })
      : h("input", { type: options.secret ? "password" : "text", name: key, autocomplete: "off", spellcheck: "false" });
    input.value = state.creds[key] ?? "";
    inputs[key] = input;
    const made = field(label, input, { hint: options.hint });
    content.push(withError(state, key, made));
    if (options.multiline) {
      const file = h("input", { type: "file", class: "file" });
      file.addEventListener("change", async () => {
        const chosen = file.files?.[0];
        if (chosen) input.value = await chosen.text();
      });
      content.push(field(`Or load ${label.toLowerCase()} from a file`, file).el);
    }
  }
  content.push(
    h(
      "p",
      { class: "hint" },
      "Credentials are checked offline when the application is created (PEM, key and certificate match, dates, field shapes), then stored encrypted; they are never shown again.",
    ),
  );
  return stepForm(
    state,
    "Credentials",
    {
      backTo: () => {
        collect();
        go(2);
      },
      onNext() {
        collect();
        const missing = {};
        for (const [key, label] of credentialFields(state.platform, state.auth)) {
          if (!state.creds[key]) missing[key] = `${label} is required.`;
        }
        state.errors[3] = missing;
        const first = Object.keys(missing)[0];
        go(first ? 3 : 4, first);
      },
    },
    content,
  );

  function collect() {
    for (const [key, input] of Object.entries(inputs)) state.creds[key] = input.value.trim();
  }
}

function stepEvents(state, go) {
  const listId = uid("topics");
  const list = h("datalist", { id: listId }, state.topics.map((arn) => h("option", { value: arn })));
  const inputs = {};
  const eventFields = EVENTS.map(([key, label]) => {
    const input = h("input", { type: "text", name: key, list: listId, value: state.events[key] ?? "", autocomplete: "off", spellcheck: "false" });
    inputs[key] = input;
    return withError(state, key, field(`${label} topic`, input, { hint: `${key}: a topic ARN, or empty` }));
  });
  const rate = h("input", { type: "number", name: "SuccessFeedbackSampleRate", min: "0", max: "100", step: "1", value: state.sampleRate, inputmode: "numeric" });
  const collect = () => {
    for (const [key, input] of Object.entries(inputs)) state.events[key] = input.value.trim();
    state.sampleRate = rate.value.trim();
  };
  return stepForm(
    state,
    "Events and options",
    {
      backTo: () => {
        collect();
        go(3);
      },
      onNext() {
        collect();
        const errors = {};
        for (const [key, value] of Object.entries(state.events)) {
          if (value && !value.startsWith("arn:")) errors[key] = "A topic ARN starts with arn: (or leave it empty).";
        }
        if (state.sampleRate && !/^(100|[0-9]{1,2})$/.test(state.sampleRate)) {
          errors.SuccessFeedbackSampleRate = "An integer from 0 to 100.";
        }
        state.errors[4] = errors;
        const first = Object.keys(errors)[0];
        go(first ? 4 : 5, first);
      },
    },
    h(
      "fieldset",
      {},
      h("legend", {}, "Application events"),
      h("p", { class: "hint" }, "Each is published to its topic in SNS's JSON shape; subscribe an HTTPS backend to learn about them."),
      eventFields,
      list,
    ),
    withError(
      state,
      "SuccessFeedbackSampleRate",
      field("Success sample rate (%)", rate, {
        hint: "SuccessFeedbackSampleRate: the share of successful deliveries kept in the ledger and logged (failures always are)",
      }),
    ),
  );
}

export function attributesOf(state) {
  const attributes = {};
  for (const [key] of credentialFields(state.platform, state.auth)) attributes[key] = state.creds[key];
  for (const [key, value] of Object.entries(state.events)) if (value) attributes[key] = value;
  if (state.sampleRate) attributes.SuccessFeedbackSampleRate = state.sampleRate;
  return attributes;
}

function stepReview(state, go) {
  const shown = credentialFields(state.platform, state.auth).map(([key, label, options]) => {
    const value = state.creds[key] ?? "";
    return [label, options.secret ? `Provided (${value.length} characters, hidden)` : h("code", { class: "wrap" }, value)];
  });
  const events = EVENTS.map(([key, label]) => [`${label} topic`, state.events[key] || "None"]);
  const status = h("div", { class: "region", role: "status" });
  const form = stepForm(
    state,
    "Review",
    {
      nextLabel: "Create application",
      backTo: () => go(4),
      async onNext() {
        const submit = form.querySelector('button[type="submit"]');
        submit.setAttribute("aria-busy", "true");
        fill(status, "Creating…");
        try {
          const made = await api("POST", paths.apps, {
            body: { name: state.name, platform: state.platform, attributes: attributesOf(state) },
          });
          forgetApps();
          announce(`Application ${state.name} created.`);
          window.location.hash = `#/apps/${encodeURIComponent(made.platformApplicationArn)}`;
        } catch (error) {
          submit.removeAttribute("aria-busy");
          fill(status);
          const [step, key] = placeError(error.message, state);
          const text = `${error.code}: ${error.message}`;
          state.errors[step] = key ? { [key]: text, _: `The daemon refused the application: ${text}` } : { _: text };
          go(step, key ?? undefined);
        }
      },
    },
    details([
      ["Platform", state.platform],
      ["Name", state.name],
      ...(APPLE.includes(state.platform) ? [["Authentication", state.auth === "token" ? "Token (.p8)" : "Certificate"]] : []),
      ...shown,
      ...events,
      ["Success sample rate", state.sampleRate ? `${state.sampleRate} %` : "Default"],
    ]),
    status,
  );
  return form;
}
