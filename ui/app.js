// The window: mirrors the shell's one state in document.body.dataset.state and sends the
// person's choices back as commands. It never sees a token or the authorization URL ("Copy link"
// is done by the shell). Text from outside (names, emails, a provider's words) is only ever set
// with textContent.
import { strings, pickLanguage } from "./i18n.js";

const tauri = window.__TAURI__;
const $ = (id) => document.getElementById(id);

let lang = "en";
let t = strings.en;
let countdownTimer = null;
let lastMethod = "amazon";
let rendered = false;

function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}

function setLanguage(language) {
  lang = language in strings ? language : pickLanguage(navigator.languages);
  t = strings[lang];
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t[el.dataset.i18n];
  }
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t[el.dataset.i18nLabel]);
  }
  document.title = t.appName;
}

// Focus rings only for people using the keyboard: a click or a state change never draws one.
function trackInputModality() {
  const root = document.documentElement;
  window.addEventListener("keydown", (e) => {
    if (!e.metaKey && !e.ctrlKey && !e.altKey) root.dataset.input = "keyboard";
  }, true);
  window.addEventListener("pointerdown", () => { root.dataset.input = "pointer"; }, true);
}

function errorWords(code) {
  return t.errors[code] || t.unknownError;
}

function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  return parts.slice(0, 2).map((p) => [...p][0].toUpperCase()).join("") || "?";
}

function providerName(id) {
  return id === "amazon" ? "Amazon" : id.charAt(0).toUpperCase() + id.slice(1);
}

function formatLeft(seconds) {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function startCountdown(deadline) {
  clearInterval(countdownTimer);
  const el = $("countdown");
  const tick = () => {
    const left = Math.max(0, Math.round(deadline - Date.now() / 1000));
    el.textContent = formatLeft(left);
    if (left === 0) clearInterval(countdownTimer);
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
}

function showNotice(el, notice) {
  el.hidden = !notice;
  if (!notice) {
    el.textContent = "";
    return;
  }
  const words = errorWords(notice.code);
  el.textContent = notice.detail ? `${words.message} (${notice.detail})` : words.message;
}

function renderUser(user) {
  const name = user.name || user.username || user.email || "";
  $("user-name").textContent = name;
  $("user-email").textContent = user.email || "";
  $("user-email").hidden = !user.email;
  $("avatar").textContent = initials(name);
  const img = $("avatar-img");
  img.hidden = true;
  img.removeAttribute("src");
  // The shell passes the picture it fetched as a data: URL (the CSP allows no remote image);
  // if one fails to load, the initials stay.
  if (user.picture && user.picture.startsWith("data:image/")) {
    img.onload = () => { img.hidden = false; $("avatar").hidden = true; };
    img.onerror = () => { img.hidden = true; $("avatar").hidden = false; };
    $("avatar").hidden = false;
    img.src = user.picture;
  } else {
    $("avatar").hidden = false;
  }
  const via = $("user-via");
  const ids = user.identities || [];
  via.hidden = ids.length === 0;
  via.textContent = ids.length ? fill(t.via, { provider: ids.map(providerName).join(", ") }) : "";
  return name;
}

function renderApiPanel(resources) {
  const panel = $("api-panel");
  panel.hidden = resources.length === 0;
  const select = $("api-resource");
  const current = [...select.options].map((o) => o.value).join("\n");
  if (current !== resources.join("\n")) {
    select.replaceChildren(...resources.map((r) => new Option(r, r)));
    $("api-result").hidden = true;
    $("api-error").hidden = true;
  }
}

// Asks the shell for an access token for the chosen API and shows what may be shown of it.
async function callApi() {
  const resource = $("api-resource").value;
  const button = $("call-api");
  button.disabled = true;
  try {
    const info = await tauri.core.invoke("get_access_token", { resource });
    const claims = info.claims || {};
    const audience = Array.isArray(claims.aud) ? claims.aud.join(", ") : (claims.aud || info.resource || "");
    $("api-audience").textContent = audience;
    $("api-scope").textContent = claims.scope || info.scope || t.apiNoScopes;
    const expires = claims.exp || info.expires_at;
    $("api-expires").textContent = expires ? new Date(expires * 1000).toLocaleString(lang) : "";
    $("api-result").hidden = false;
    $("api-error").hidden = true;
  } catch (error) {
    $("api-result").hidden = true;
    showNotice($("api-error"), { code: error?.code || "app.error", detail: error?.detail || null });
  } finally {
    button.disabled = false;
  }
}

function renderError(view) {
  const words = errorWords(view.code);
  $("error-title").textContent = words.title;
  $("error-text").textContent = t.errors[view.code] ? words.message : (view.message || words.message);
  $("error-message").dataset.code = view.code;
  const detail = $("error-detail");
  detail.hidden = !view.detail;
  $("error-detail-text").textContent = view.detail || "";
  // Nothing to retry when the configuration itself is wrong: it is fixed outside the window.
  $("try-again").hidden = view.code === "config.invalid";
  // Then the way to fix it is to read how, which the link opens in the browser.
  $("error-help").hidden = view.code !== "config.invalid";
  return words;
}

// Where the tenant has no Amazon connector, "Continue with Amazon" would land on Logto's own first
// screen: offer plain sign-in as the main button instead, and say how to add Amazon.
function renderAmazonOffer(offered) {
  $("sign-in-amazon").hidden = !offered;
  $("or").hidden = !offered;
  $("amazon-missing").hidden = offered;
  const signIn = $("sign-in");
  signIn.classList.toggle("secondary", offered);
  signIn.toggleAttribute("data-autofocus", !offered);
}

function renderSetup(view) {
  $("setup-path").textContent = view.config_path ? fill(t.setupSavedTo, { path: view.config_path }) : "";
  const problem = $("setup-problem");
  problem.hidden = !view.problem;
  problem.textContent = view.problem
    ? `${t.setupFileProblem}${view.problem.detail ? ` (${view.problem.detail})` : ""}`
    : "";
}

// After a state change, keep keyboard focus somewhere sensible: if the focused control has just
// been hidden, move to the new panel's main control. Never on first render (no focus ring before
// the person has touched anything), and never by stealing focus from a visible control.
function moveFocus(state) {
  if (!rendered) return;
  const active = document.activeElement;
  if (active && active !== document.body && active.offsetParent !== null) return;
  const panel = document.querySelector(`[data-panel="${state}"]`);
  const target = panel && (panel.querySelector("[data-autofocus]:not([hidden])") || panel.querySelector("h2"));
  if (target) target.focus({ preventScroll: true });
}

function render(view) {
  document.body.dataset.state = view.state;
  clearInterval(countdownTimer);
  let announcement = fill(t.announce[view.state] || "", {});
  if (view.state === "setup") {
    renderSetup(view);
  } else if (view.state === "signed-out") {
    showNotice($("notice"), view.notice);
    renderAmazonOffer(!view.amazon_missing);
  } else if (view.state === "signing-in") {
    lastMethod = view.method || lastMethod;
    startCountdown(view.deadline);
    $("signing-in-feedback").textContent = "";
    const err = $("browser-error");
    err.hidden = !view.browser_error;
    err.textContent = view.browser_error ? `${t.browserNotOpened} (${view.browser_error})` : "";
  } else if (view.state === "signed-in") {
    const name = renderUser(view.user);
    renderApiPanel(view.resources || []);
    announcement = fill(t.announce["signed-in"], { name });
  } else if (view.state === "error") {
    const words = renderError(view);
    announcement = fill(t.announce.error, { title: words.title, message: $("error-text").textContent });
  }
  $("status").textContent = announcement;
  moveFocus(view.state);
  rendered = true;
}

async function call(command, args) {
  try {
    await tauri.core.invoke(command, args);
    return null;
  } catch (error) {
    return {
      code: error?.code || "app.error",
      message: error?.message || String(error),
      detail: error?.detail || null,
    };
  }
}

async function signIn(method) {
  lastMethod = method;
  const error = await call("sign_in", { method });
  if (error) render({ state: "error", ...error });
}

function feedback(text) {
  $("signing-in-feedback").textContent = text;
}

function showSetupError(text, detail) {
  const box = $("setup-error");
  $("setup-error-text").textContent = text;
  $("setup-error-detail").textContent = detail || "";
  $("setup-error-detail").hidden = !detail;
  box.hidden = !text;
  if (text) box.scrollIntoView({ block: "nearest" });
}

async function saveSetup(event) {
  event.preventDefault();
  const endpoint = $("setup-endpoint").value.trim();
  const appId = $("setup-app-id").value.trim();
  if (!endpoint || !appId) {
    showSetupError(t.setupEmpty);
    (endpoint ? $("setup-app-id") : $("setup-endpoint")).focus();
    return;
  }
  showSetupError("");
  const button = $("setup-save");
  button.disabled = true;
  button.classList.add("busy");
  $("setup-save-label").textContent = t.setupChecking;
  $("status").textContent = t.setupChecking;
  const error = await call("save_setup", { endpoint, appId });
  button.disabled = false;
  button.classList.remove("busy");
  $("setup-save-label").textContent = t.setupSave;
  if (error) {
    showSetupError(t.setupErrors[error.code] || errorWords(error.code).message, error.detail);
  }
}

function wire() {
  $("sign-in-amazon").addEventListener("click", () => signIn("amazon"));
  $("sign-in").addEventListener("click", () => signIn("logto"));
  $("cancel").addEventListener("click", () => call("cancel_sign_in"));
  $("open-again").addEventListener("click", async () => {
    const error = await call("open_browser_again");
    feedback(error ? `${errorWords(error.code).message}${error.detail ? ` (${error.detail})` : ""}` : t.browserOpened);
  });
  $("copy-link").addEventListener("click", async () => {
    const error = await call("copy_sign_in_link");
    feedback(error ? errorWords(error.code).message : t.linkCopied);
  });
  $("sign-out").addEventListener("click", async () => {
    const error = await call("sign_out");
    if (error) render({ state: "error", ...error });
  });
  $("try-again").addEventListener("click", () => signIn(lastMethod));
  $("call-api").addEventListener("click", callApi);
  $("setup-form").addEventListener("submit", saveSetup);
  // Help opens in the system browser; the window itself never navigates away.
  for (const link of document.querySelectorAll("a[data-help]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      call("open_help", { topic: link.dataset.help });
    });
  }
}

trackInputModality();
wire();
// The first screen first: the shell answers once the stored session is read, so what is drawn
// is the real state. Then follow the changes: listen, and ask once more for any change made in
// between; the versions keep an older answer from replacing a newer event.
let shown = -1;
function show(snapshot) {
  if (snapshot.version > shown) {
    shown = snapshot.version;
    render(snapshot);
  }
}
const snapshot = await tauri.core.invoke("get_state");
setLanguage(snapshot.language);
show(snapshot);
document.documentElement.dataset.ready = "";
// Two frames on, the first screen has been drawn: the shell logs which one it was.
requestAnimationFrame(() => requestAnimationFrame(() =>
  tauri.core.invoke("first_screen_drawn", { state: document.body.dataset.state }).catch(() => {})));
await tauri.event.listen("auth-state", (event) => show(event.payload));
show(await tauri.core.invoke("get_state"));
