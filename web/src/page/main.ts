// The chat page of the browser device (issue 18): log in to the account's PDS, become or
// reopen this browser's device (state in the encrypted IndexedDB store, decision 0028), the
// group list, a conversation with live messages, create a group, add and remove members,
// leave, rotate the leaf key. Plain DOM; the only script is this bundle (CSP script-src 'self').
import { Device, type DeviceConfig, type GroupSummary, type MessageRecord } from "../device/index.js";
import { type ResolverConfig, resolveDid } from "../net/did.js";
import { parseDid } from "../mls/did.js";
import { PdsSession } from "../net/pds.js";
import { openStore } from "../store/index.js";
import { $, el, errorText, setStatus } from "./dom.js";

const SETTINGS = "atmls-settings";
const STORE = "atmls-device";

interface Settings {
  readonly pds: string;
  readonly plc: string;
}

function loopback(url: string): boolean {
  try {
    const h = new URL(url).hostname;
    return h === "127.0.0.1" || h === "localhost" || h === "[::1]";
  } catch {
    return false;
  }
}

function loadSettings(): Settings {
  try {
    const v = JSON.parse(localStorage.getItem(SETTINGS) ?? "null") as { pds?: unknown; plc?: unknown } | null;
    if (v !== null && typeof v.pds === "string" && typeof v.plc === "string") return { pds: v.pds, plc: v.plc };
  } catch {
    // fall through to the defaults
  }
  const here = location.origin;
  return { pds: here, plc: loopback(here) ? here : "https://plc.directory" };
}

function resolverOf(s: Settings): ResolverConfig {
  return { plcUrl: s.plc, allowHttpLoopback: loopback(s.plc) || loopback(s.pds) };
}

let device: Device | undefined;
let settings = loadSettings();
let selected: string | undefined;
let session: PdsSession | undefined;
/** Handles of DIDs, from their DID documents' `alsoKnownAs` (shown only; identity is the DID). */
const handles = new Map<string, string>();

function nameOf(did: string | undefined): string {
  if (did === undefined) return "?";
  const known = handles.get(did);
  if (known !== undefined) return known;
  handles.set(did, did);
  const parsed = parseDid(did);
  if (parsed !== undefined) {
    resolveDid(parsed as never, resolverOf(settings))
      .then((doc) => {
        const aka = doc.alsoKnownAs.find((a) => a.startsWith("at://"));
        if (aka !== undefined) {
          handles.set(did, aka.slice(5));
          void renderAll();
        }
      })
      .catch(() => undefined);
  }
  return did;
}

/**
 * The page looks for the account's other devices every 15 s (§11.10; the reference client's
 * default is 5 min) and syncs every 5 s besides the live subscription (as `Device::run` polls).
 */
const OWN_DEVICE_CHECK_MS = 15_000;
const POLL_MS = 5_000;

function config(): DeviceConfig {
  return { resolver: resolverOf(settings), ownDeviceCheckIntervalMs: OWN_DEVICE_CHECK_MS };
}

async function storage() {
  return openStore(STORE);
}

/** Handles or DIDs typed by the user, as DIDs (handles resolved through the PDS, checked both ways). */
async function toDids(text: string): Promise<string[]> {
  const names = text.split(/[\s,]+/).map((s) => s.trim().replace(/^@/, "")).filter((s) => s !== "");
  const out: string[] = [];
  for (const n of names) {
    if (n.startsWith("did:")) out.push(n);
    else {
      if (session === undefined) throw new Error("log in again to look up handles");
      out.push((await session.resolveHandle(n)).did);
    }
  }
  return out;
}

async function renderGroups(): Promise<void> {
  if (device === undefined) return;
  const list = $("[data-testid=groups]");
  const groups = await device.groups();
  if (selected === undefined && groups[0] !== undefined) selected = groups[0].id;
  list.replaceChildren(
    ...groups.map((g) => {
      const b = el("button", { type: "button", "data-group": g.id, "data-testid": "group" }, [g.name, g.removed ? el("span", { class: "removed" }, [" (removed)"]) : ""]);
      if (g.id === selected) b.classList.add("selected");
      b.addEventListener("click", () => {
        selected = g.id;
        void renderAll();
      });
      return el("li", {}, [b]);
    }),
  );
  const g = groups.find((x) => x.id === selected);
  renderHeader(g);
}

function renderHeader(g: GroupSummary | undefined): void {
  $("[data-testid=group-name]").textContent = g === undefined ? "No group selected" : g.name;
  const members = $("[data-testid=members]");
  if (g === undefined) {
    members.textContent = "";
    return;
  }
  const accounts = new Map<string, number>();
  for (const m of g.members) accounts.set(m.did ?? "?", (accounts.get(m.did ?? "?") ?? 0) + 1);
  members.textContent = `epoch ${g.epoch} · ${g.members.length} devices: ` + [...accounts].map(([did, n]) => `${nameOf(did)}${n > 1 ? ` ×${n}` : ""}`).join(", ");
  members.dataset["devices"] = String(g.members.length);
}

function line(m: MessageRecord, self: string): HTMLElement {
  if (m.kind === "event") return el("li", { class: "event", "data-testid": "event" }, [m.text]);
  const mine = m.from === self;
  return el("li", { class: mine ? "mine" : "", "data-testid": "message" }, [
    el("span", { class: "bubble" }, [mine ? "" : el("span", { class: "from" }, [nameOf(m.from)]), m.text]),
  ]);
}

async function renderMessages(): Promise<void> {
  if (device === undefined) return;
  const list = $("[data-testid=messages]");
  const lines = selected === undefined ? [] : await device.messages(selected);
  list.replaceChildren(...lines.map((m) => line(m, device!.identity.did)));
  list.scrollTop = list.scrollHeight;
}

async function renderAll(): Promise<void> {
  await renderGroups();
  await renderMessages();
}

function showError(e: unknown): void {
  $("[data-testid=error]").textContent = errorText(e);
}

/** Runs a user action: the error line shows its failure. */
function act(f: () => Promise<void>): void {
  showError("");
  f().then(renderAll).catch(showError);
}

async function start(d: Device): Promise<void> {
  device = d;
  // Reopened after a reload: reading and sending work; the form stays for what needs the PDS.
  $("#login").hidden = d.hasSession;
  $("#app").hidden = false;
  $("[data-testid=who]").textContent = `${d.identity.handle} · device ${d.identity.deviceId}${d.hasSession ? "" : " · read-only until you log in"}`;
  d.subscribe((e) => {
    if (e.kind === "live") setStatus(e.connected ? "live" : "reconnecting…");
    else void renderAll();
  });
  await renderAll();
  await d.sync().catch(showError);
  await renderAll();
  if (($("#live") as HTMLInputElement).checked) await d.startLive().catch(showError);
  setInterval(() => {
    if (($("#live") as HTMLInputElement).checked) d.sync().catch(showError);
  }, POLL_MS);
}

async function login(form: HTMLFormElement): Promise<void> {
  const data = new FormData(form);
  const get = (k: string) => String(data.get(k) ?? "").trim();
  settings = { pds: get("pds"), plc: get("plc") };
  localStorage.setItem(SETTINGS, JSON.stringify(settings));
  setStatus("logging in…");
  session = await PdsSession.login(settings.pds, get("handle"), get("password"), { resolver: resolverOf(settings) });
  if (device !== undefined) {
    device.setSession(session);
    $("[data-testid=who]").textContent = `${device.identity.handle} · device ${device.identity.deviceId}`;
    $("#login").hidden = true;
    setStatus("logged in");
    return;
  }
  const store = await storage();
  const reopened = await Device.open(store, config(), session);
  setStatus(reopened === undefined ? "becoming a device of this account…" : "opening…");
  await start(reopened ?? (await Device.create(session, store, { ...config(), dsEndpoint: settings.pds })));
}

function wire(): void {
  const loginForm = $("#login") as HTMLFormElement;
  (loginForm.elements.namedItem("pds") as HTMLInputElement).value = settings.pds;
  (loginForm.elements.namedItem("plc") as HTMLInputElement).value = settings.plc;
  loginForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("[data-testid=login-error]").textContent = "";
    login(loginForm).catch((e: unknown) => {
      $("[data-testid=login-error]").textContent = errorText(e);
      setStatus("");
    });
  });
  $("#create").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target as HTMLFormElement;
    const data = new FormData(f);
    act(async () => {
      const dids = await toDids(String(data.get("with") ?? ""));
      const { id, added } = await device!.createGroup(String(data.get("name") ?? ""), dids);
      selected = id;
      setStatus(added.kind === "accepted" && added.undelivered.length > 0 ? `${added.undelivered.length} welcome(s) undelivered` : "group created");
      f.reset();
    });
  });
  $("#send").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target as HTMLFormElement;
    const text = String(new FormData(f).get("text") ?? "");
    if (selected === undefined) return;
    const id = selected;
    f.reset();
    act(() => device!.send(id, text));
  });
  $("#members").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target as HTMLFormElement;
    const which = (ev as SubmitEvent).submitter?.getAttribute("value");
    const handles = String(new FormData(f).get("handles") ?? "");
    if (selected === undefined) return;
    const id = selected;
    act(async () => {
      const dids = await toDids(handles);
      const out = which === "remove" ? await device!.remove(id, dids) : await device!.add(id, dids);
      setStatus(out.kind === "accepted" ? `committed after ${out.attempts} attempt(s)` : "nothing to change");
      f.reset();
    });
  });
  $("#leave").addEventListener("click", () => {
    if (selected !== undefined) {
      const id = selected;
      act(() => device!.leave(id));
    }
  });
  $("#rotate").addEventListener("click", () => {
    if (selected !== undefined) {
      const id = selected;
      act(async () => {
        const out = await device!.rotate(id);
        setStatus(out.kind === "accepted" ? `committed after ${out.attempts} attempt(s)` : "nothing to change");
      });
    }
  });
  $("#live").addEventListener("change", (ev) => {
    if (device === undefined) return;
    if ((ev.target as HTMLInputElement).checked) act(() => device!.startLive());
    else {
      device.stopLive();
      setStatus("paused");
    }
  });
}

async function boot(): Promise<void> {
  wire();
  void navigator.storage?.persist?.().catch(() => false);
  try {
    const existing = await Device.open(await storage(), config());
    if (existing !== undefined) return start(existing);
  } catch (e) {
    $("[data-testid=login-error]").textContent = errorText(e);
  }
  $("#login").hidden = false;
  setStatus("");
}

void boot();
