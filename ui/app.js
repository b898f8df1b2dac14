// The window: mirrors the shell's one state in document.body.dataset.state and sends the
// person's choices back as commands. It never sees a token or the authorization URL.
import { strings, pickLanguage } from "./i18n.js";

const tauri = window.__TAURI__;
const lang = pickLanguage(navigator.languages);
const t = strings[lang];
let countdownTimer = null;

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}

function translatePage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t[el.dataset.i18n];
  }
}

function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  return parts.slice(0, 2).map((p) => [...p][0].toUpperCase()).join("") || "?";
}

function providerName(id) {
  return id === "amazon" ? "Amazon" : id.charAt(0).toUpperCase() + id.slice(1);
}

function startCountdown(deadline) {
  clearInterval(countdownTimer);
  const el = document.getElementById("countdown");
  const tick = () => {
    const left = Math.max(0, Math.round(deadline - Date.now() / 1000));
    el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

function render(view) {
  document.body.dataset.state = view.state;
  clearInterval(countdownTimer);
  let announcement = t.announce[view.state] || "";
  if (view.state === "signed-out") {
    const notice = document.getElementById("notice");
    notice.hidden = !view.notice;
    notice.textContent = view.notice || "";
    document.getElementById("sign-in-amazon").focus();
  } else if (view.state === "signing-in") {
    startCountdown(view.deadline);
    const err = document.getElementById("browser-error");
    err.hidden = !view.browser_error;
    err.textContent = view.browser_error || "";
    document.getElementById("cancel").focus();
  } else if (view.state === "signed-in") {
    const user = view.user;
    const name = user.name || user.username || user.email || "";
    document.getElementById("user-name").textContent = name;
    document.getElementById("user-email").textContent = user.email || "";
    document.getElementById("avatar").textContent = initials(name);
    const via = document.getElementById("user-via");
    via.hidden = user.identities.length === 0;
    via.textContent = user.identities.length ? fill(t.via, { provider: user.identities.map(providerName).join(", ") }) : "";
    announcement = fill(announcement, { name });
    document.getElementById("sign-out").focus();
  } else if (view.state === "error") {
    document.getElementById("error-message").textContent = view.message;
    document.getElementById("error-message").dataset.code = view.code;
    announcement = fill(announcement, { message: view.message });
    document.getElementById("try-again").focus();
  }
  document.getElementById("status").textContent = announcement;
}

async function call(command, args) {
  try {
    await tauri.core.invoke(command, args);
  } catch (error) {
    render({ state: "error", code: error?.code || "app.error", message: error?.message || String(error) });
  }
}

translatePage();
document.getElementById("sign-in-amazon").addEventListener("click", () => call("sign_in", { method: "amazon" }));
document.getElementById("sign-in").addEventListener("click", () => call("sign_in", { method: "logto" }));
document.getElementById("cancel").addEventListener("click", () => call("cancel_sign_in"));
document.getElementById("sign-out").addEventListener("click", () => call("sign_out"));
document.getElementById("try-again").addEventListener("click", () => call("sign_in", { method: "amazon" }));

await tauri.event.listen("auth-state", (event) => render(event.payload));
render(await tauri.core.invoke("get_state"));
