// The console page: noVNC, bundled into vnc.js at build time (scripts/build.sh), against the
// server's console proxy. The page first asks whether its ticket would be let in, because a
// browser's WebSocket hides why an upgrade was refused.
import RFB from "@novnc/novnc/lib/rfb.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token") || "";

function show(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = kind || "";
}

// X11 keysyms: Latin-1 characters are their own code; others go by the Unicode rule.
function keysym(ch) {
  if (ch === "\n") return 0xff0d;
  if (ch === "\t") return 0xff09;
  const code = ch.codePointAt(0);
  return code < 0x100 ? code : 0x01000000 + code;
}

async function main() {
  if (!token) {
    show("No console token: open the console from the instance's page.", "error");
    return;
  }
  const check = await fetch("/client/console/ticket?token=" + encodeURIComponent(token), { credentials: "same-origin" });
  const text = await check.text();
  if (!check.ok) {
    show(text, "error");
    return;
  }
  const vm = JSON.parse(text).vm;
  $("title").textContent = vm;
  document.title = vm + " – console";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + "/client/console/websocket?token=" + encodeURIComponent(token);
  const rfb = new RFB($("screen"), url);
  rfb.scaleViewport = true;
  rfb.addEventListener("connect", () => {
    show("Connected", "ok");
    $("ctrl-alt-del").disabled = false;
    $("send-text").disabled = false;
  });
  rfb.addEventListener("disconnect", (e) => {
    show(e.detail.clean ? "Disconnected. Open the console again to reconnect." : "The connection to the console was lost.", "error");
    $("ctrl-alt-del").disabled = true;
    $("send-text").disabled = true;
  });
  $("ctrl-alt-del").addEventListener("click", () => rfb.sendCtrlAltDel());
  $("send-text").addEventListener("click", () => {
    for (const ch of $("paste").value) rfb.sendKey(keysym(ch));
    $("paste").value = "";
    rfb.focus();
  });
  window.wasmstackConsole = rfb;
}

main().catch((e) => show("The console failed: " + e, "error"));
