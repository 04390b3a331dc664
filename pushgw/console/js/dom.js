// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so
// nothing the API returns (tokens, CustomUserData, provider answers) can inject
// markup.

/**
 * h("button", { type: "button", onclick }, "Save") → <button>. Attributes:
 * `class`, `text`, `dataset`, `on<event>` handlers, booleans (true: present,
 * false/null/undefined: absent), anything else as an attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in el) el.value = value;
    else if (name === "checked" || name === "selected") el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

let nextId = 0;
/** A document-unique id for label/aria-describedby pairs. */
export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * A labelled form control: { el, input, error(message) }. `input` is built by
 * the caller (input, select, textarea) and gets the id, hint and error wiring.
 */
export function field(label, input, { hint, name } = {}) {
  const id = input.id || uid(name ?? "field");
  input.id = id;
  if (name) input.name = name;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const errorEl = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const describe = () => {
    const ids = [hintEl && hintEl.id, !errorEl.hidden && errorEl.id].filter(Boolean);
    if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
    else input.removeAttribute("aria-describedby");
  };
  describe();
  const el = h("div", { class: "field" }, h("label", { for: id }, label), hintEl, input, errorEl);
  return {
    el,
    input,
    error(message) {
      errorEl.textContent = message ?? "";
      errorEl.hidden = !message;
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      describe();
    },
  };
}

/** Announce a short text to screen readers (the one polite live region). */
export function announce(text) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  // A new text node after a tick, so the same message twice is read twice.
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** A message box for an API error (role=alert: read at once). */
export function errorBox(error, prefix = "") {
  const code = error.code ? `${error.code}: ` : "";
  return h("div", { class: "notice error", role: "alert" }, `${prefix}${code}${error.message}`);
}

export function notice(text, kind = "info") {
  return h("div", { class: `notice ${kind}` }, text);
}

/** A status word that does not rely on colour alone. */
export function badge(text, kind = "neutral") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function enabledBadge(enabled) {
  return enabled ? badge("Enabled", "good") : badge("Disabled", "bad");
}

const numberFormat = new Intl.NumberFormat();
export function num(value) {
  return numberFormat.format(Number(value ?? 0));
}

/** "2026-12-03T10:00:00.000Z" → local date and time, with the ISO as title. */
export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

/** A long identifier shown shortened, whole in its title and to copy. */
export function mono(text, { max = 48 } = {}) {
  const value = String(text ?? "");
  const tail = Math.min(10, Math.floor((max - 1) / 2));
  const short = value.length > max ? `${value.slice(0, max - 1 - tail)}…${value.slice(-tail)}` : value;
  return h("code", { class: "mono", title: value }, short);
}

/**
 * A table in a scrollable, keyboard-focusable region. `columns`: [{ label,
 * cell(row) → node|string, class }]; `empty`: text when there are no rows.
 */
export function table({ caption, columns, rows, empty = "Nothing here.", rowKey }) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  const head = h(
    "tr",
    {},
    columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)),
  );
  const body = rows.map((row) =>
    h(
      "tr",
      { dataset: rowKey ? { key: rowKey(row) } : undefined },
      columns.map((c, i) => {
        const content = c.cell(row);
        return i === 0 && c.header !== false
          ? h("th", { scope: "row", class: c.class }, content)
          : h("td", { class: c.class }, content);
      }),
    ),
  );
  const captionEl = caption ? h("caption", {}, caption) : null;
  return h(
    "div",
    { class: "table-wrap", role: "region", tabindex: "0", "aria-label": caption ?? "Table" },
    h("table", {}, captionEl, h("thead", {}, head), h("tbody", {}, body)),
  );
}

/** A definition list from [term, value] pairs. */
export function details(pairs) {
  return h(
    "dl",
    { class: "details" },
    pairs.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value ?? "—"))),
  );
}

/**
 * A region whose content is rebuilt only when its data changed, keeping the
 * focus on the element with the same data-focus key (so polling never yanks
 * the keyboard user's place away).
 */
export function liveRegion(attrs = {}) {
  const el = h("div", attrs);
  let last;
  return {
    el,
    update(data, build) {
      const key = JSON.stringify(data);
      if (key === last) return false;
      last = key;
      const active = document.activeElement;
      const focusKey = el.contains(active) ? active?.dataset?.focus : undefined;
      fill(el, build(data));
      if (focusKey) {
        const again = el.querySelector(`[data-focus="${CSS.escape(focusKey)}"]`);
        if (again) again.focus();
      }
      return true;
    },
    reset() {
      last = undefined;
    },
  };
}

/**
 * Previous/next paging by opaque NextToken: keeps the tokens of the pages
 * seen, so "Previous" goes back without the API having to page backwards.
 */
export function pager(label, onPage) {
  const tokens = [null];
  let index = 0;
  let next = null;
  const where = h("span", { class: "where", "aria-live": "polite" }, "Page 1");
  const go = (step) => {
    if (step < 0 && index > 0) index -= 1;
    else if (step > 0 && next) {
      tokens.splice(index + 1);
      tokens.push(next);
      index += 1;
    } else return;
    onPage();
  };
  const previous = h("button", { type: "button", class: "quiet", onclick: () => go(-1) }, "Previous page");
  const following = h("button", { type: "button", class: "quiet", onclick: () => go(1) }, "Next page");
  const el = h("nav", { class: "pager", "aria-label": label }, previous, where, following);
  const sync = () => {
    // aria-disabled, not disabled: a focused button keeps its focus at the end.
    previous.setAttribute("aria-disabled", String(index === 0));
    following.setAttribute("aria-disabled", String(!next));
    where.textContent = `Page ${index + 1}`;
  };
  sync();
  return {
    el,
    get token() {
      return tokens[index];
    },
    set next(token) {
      next = token ?? null;
      sync();
    },
    reset() {
      tokens.splice(1);
      index = 0;
      next = null;
      sync();
    },
  };
}

/** The confirmation dialog (a native modal <dialog>): resolves true or false. */
export function confirmDialog({ title, text, confirm = "Confirm" }) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = confirm;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        resolve(dialog.returnValue === "ok");
        if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      },
      { once: true },
    );
    dialog.returnValue = "cancel";
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

/** A button that runs an async action once at a time (aria-busy meanwhile). */
export function actionButton(label, action, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    if (button.getAttribute("aria-busy") === "true") return;
    button.setAttribute("aria-busy", "true");
    try {
      await action(button);
    } finally {
      button.removeAttribute("aria-busy");
    }
  });
  return button;
}

/** The page heading, focusable so a route change can move focus to it. */
export function heading(text, ...rest) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, text), ...rest);
}

export function section(title, ...children) {
  const id = uid("section");
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}
