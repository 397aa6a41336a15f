// Settings: grouped fields, masked secrets with "Replace", the source of every value,
// per-field errors, and whether a save was applied live or needs a restart.

import { ApiError, api, put } from "./api.js";
import { fill, h } from "./dom.js";
import { refreshNeedsConfig, toast } from "./chrome.js";

const SOURCES = {
  database: "saved here",
  environment: "from the environment",
  file: "from the config file",
  default: "default",
};

export function mount(main) {
  fill(main, h("h1", {}, "Settings"), h("p", { class: "empty" }, "Loading settings…"));
  let data = null;
  const status = {}; // key → {message, tone}
  let typed = {}; // key → value typed but not saved (kept across a failed save)

  async function load() {
    try {
      data = await api("/api/settings");
      render();
    } catch (e) {
      fill(main, h("h1", {}, "Settings"), h("p", { class: "field-error", role: "alert" }, e.message));
    }
  }

  function render(errors = {}, keep = {}) {
    typed = keep;
    const forms = data.groups.map((g) => group(g, errors));
    fill(
      main,
      h("h1", {}, "Settings"),
      h("p", { class: "help" }, "Values saved here win over the environment, which wins over the config file and the defaults."),
      data.groups.length ? forms : h("p", { class: "empty" }, "This service has no settings to edit here."),
    );
    focusHash();
  }

  function group(g, errors) {
    const inputs = new Map();
    const form = h("form", { class: "settings-group", "aria-labelledby": `group-${slug(g.name)}`, novalidate: true });
    const fields = g.fields.map((f) => field(f, errors[f.key], inputs));
    const formStatus = h("p", { class: "form-status", role: "status" });
    fill(
      form,
      h("h2", { id: `group-${slug(g.name)}` }, g.name),
      fields,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, `Save ${g.name}`), formStatus),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const values = {};
      for (const [key, get] of inputs) {
        const v = get();
        if (v !== undefined) values[key] = v;
      }
      if (Object.keys(values).length === 0) {
        formStatus.textContent = "Nothing changed.";
        return;
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const res = await put("/api/settings", { values });
        data = res.settings;
        for (const r of res.results) status[r.key] = { message: statusText(r), tone: r.outcome === "apply_failed" ? "warn" : "ok" };
        render();
        refreshNeedsConfig();
        toast(`${g.name} settings saved.`, "info");
      } catch (err) {
        if (err instanceof ApiError && Object.keys(err.fields).length) {
          render(err.fields, values);
          const first = document.querySelector("[aria-invalid=true]");
          if (first) first.focus();
          toast(err.message, "error");
        } else {
          button.disabled = false;
          formStatus.textContent = err.message;
        }
      }
    });
    return form;
  }

  function field(f, error, inputs) {
    const id = `field-${f.key}`;
    const errId = `${id}-error`;
    const helpId = `${id}-help`;
    const describedBy = [f.help ? helpId : null, error ? errId : null].filter(Boolean).join(" ") || null;
    const source = f.source
      ? h("span", { class: `source source-${f.source}`, title: sourceTitle(f) }, SOURCES[f.source] || f.source)
      : h("span", { class: "source source-missing" }, f.required ? "not set — required" : "not set");
    const saved = status[f.key];
    let control;

    if (f.secret) {
      const input = h("input", { id, name: f.key, type: "password", autocomplete: "off", hidden: typed[f.key] === undefined, "aria-invalid": error ? "true" : null, "aria-describedby": describedBy, "aria-label": `New value for ${f.label}` });
      const masked = h("code", { class: "masked", "aria-label": `${f.label} (masked)` }, f.value || "not set");
      if (typeof typed[f.key] === "string") input.value = typed[f.key];
      const replace = h("button", { type: "button", class: "link", hidden: typed[f.key] !== undefined, "aria-label": `Replace ${f.label}`, onclick: () => { input.hidden = false; replace.hidden = true; input.focus(); } }, f.value ? "Replace" : "Set");
      inputs.set(f.key, () => (input.hidden || input.value === "" ? undefined : input.value));
      control = h("div", { class: "secret" }, masked, " ", replace, input);
      return wrap(h("label", { class: "field-label", for: id, id: `${id}-label` }, f.label, f.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null));
    }

    let input;
    const initial = f.source ? f.value : "";
    const kind = f.kind.type;
    if (kind === "bool" || kind === "choice") {
      const options = kind === "bool" ? ["true", "false"] : f.kind.options;
      input = h("select", { id, name: f.key, "aria-invalid": error ? "true" : null, "aria-describedby": describedBy }, !f.value ? h("option", { value: "" }, "—") : null, options.map((o) => h("option", { value: o }, o)));
      input.value = initial || "";
    } else {
      const type = kind === "integer" ? "number" : kind === "url" ? "url" : "text";
      const extra = kind === "integer" ? { min: f.kind.min, max: f.kind.max, step: 1 } : {};
      input = h("input", { id, name: f.key, type, ...extra, autocomplete: "off", spellcheck: "false", "aria-invalid": error ? "true" : null, "aria-describedby": describedBy, placeholder: f.default || null });
      input.value = initial || "";
    }
    if (typeof typed[f.key] === "string") input.value = typed[f.key];
    inputs.set(f.key, () => (input.value === (initial || "") && typed[f.key] === undefined ? undefined : input.value));
    control = input;
    return wrap(h("label", { class: "field-label", for: id }, f.label, f.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null));

    function wrap(label) {
      const reset = f.saved
        ? h("button", { type: "button", class: "link", "aria-label": `Reset ${f.label}`, title: "Remove the saved value and use the environment, file or default", onclick: () => resetField(f) }, "Reset")
        : null;
      return h(
        "div",
        { class: `field${error ? " has-error" : ""}`, dataset: { key: f.key } },
        h("div", { class: "field-head" }, label, source, f.live ? h("span", { class: "tag", title: "Takes effect at once when saved" }, "live") : h("span", { class: "tag", title: "Takes effect at the next start" }, "restart"), reset),
        control,
        f.help ? h("p", { class: "help", id: helpId }, f.help) : null,
        error ? h("p", { class: "field-error", id: errId, role: "alert" }, error) : null,
        saved ? h("p", { class: `saved saved-${saved.tone}`, role: "status" }, saved.message) : null,
      );
    }
  }

  async function resetField(f) {
    try {
      const res = await put("/api/settings", { values: { [f.key]: null } });
      data = res.settings;
      for (const r of res.results) status[r.key] = { message: statusText(r).replace("Saved", "Reset"), tone: "ok" };
      render();
      refreshNeedsConfig();
    } catch (e) {
      toast(e.message, "error");
    }
  }

  load();
  window.addEventListener("hashchange", focusHash);
  return () => window.removeEventListener("hashchange", focusHash);
}

function statusText(r) {
  if (r.outcome === "applied_live") return "Saved — applied live.";
  if (r.outcome === "needs_restart") return "Saved — needs restart.";
  return r.message;
}

function sourceTitle(f) {
  if (f.source === "environment") return `Set by ${f.env.join(" or ")}`;
  if (f.source === "database") return "Saved from this page; wins over the environment and the file";
  if (f.source === "default") return "Built-in default";
  return "From the configuration file";
}

function focusHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (!id) return;
  const el = document.getElementById(id);
  if (!el) return;
  const wrap = el.closest(".field");
  if (el.hidden && wrap) {
    const btn = wrap.querySelector(".secret button");
    if (btn) btn.click();
  }
  (el.hidden ? wrap : el).scrollIntoView({ block: "center" });
  el.focus();
}

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-");
