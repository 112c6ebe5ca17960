// A container's console: xterm.js on /ws/console/HOST/CONTAINER/ (hosts.console.consumer).
// Keystrokes go up as {"input"}, the terminal's size as {"resize": [cols, rows]}; the program's
// bytes come down as binary frames, and what the page says about the session as {"error"} or
// {"closed"} text frames. Closing the page closes the socket, which ends the shell.
(function () {
  "use strict";

  const form = document.getElementById("console-form");
  if (!form || !window.Terminal) return;
  const openButton = document.getElementById("console-open");
  const closeButton = document.getElementById("console-close");
  const state = document.getElementById("console-state");
  const holder = document.getElementById("console-terminal");
  let socket = null;
  let term = null;
  let fit = null;

  function say(text, kind) {
    state.textContent = text;
    state.dataset.state = kind;
  }

  function setOpen(open) {
    openButton.disabled = open;
    closeButton.disabled = !open;
    form.querySelectorAll("input").forEach((input) => { input.disabled = open; });
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function resize() {
    if (!term || !fit) return;
    fit.fit();
  }

  function open() {
    const chosen = form.querySelector("input[name=shell]:checked");
    const command = document.getElementById("console-command").value.trim();
    const query = new URLSearchParams();
    if (chosen && chosen.value) query.set("shell", chosen.value);
    else if (command) query.set("command", command);
    else { say("Give a command, or pick a shell.", "refused"); return; }

    if (term) term.dispose();
    holder.textContent = "";
    term = new window.Terminal({ cursorBlink: true, convertEol: false, scrollback: 5000 });
    fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(holder);
    fit.fit();
    holder.dataset.size = term.cols + "x" + term.rows;
    query.set("cols", String(term.cols));
    query.set("rows", String(term.rows));

    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + form.dataset.socket + "?" + query.toString());
    socket.binaryType = "arraybuffer";
    let told = false;
    say("connecting…", "connecting");
    setOpen(true);
    socket.addEventListener("open", () => { say("connected", "open"); term.focus(); });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        term.write(new Uint8Array(event.data));
        return;
      }
      const message = JSON.parse(event.data);
      if (message.error) { told = true; say(message.error, "refused"); }
      if (message.closed) { told = true; say(message.closed, "closed"); }
    });
    socket.addEventListener("close", () => {
      if (!told) say("disconnected", "closed");
      setOpen(false);
      socket = null;
    });
    term.onData((data) => send({ input: data }));
    term.onResize((size) => {
      holder.dataset.size = size.cols + "x" + size.rows;
      send({ resize: [size.cols, size.rows] });
    });
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); open(); });
  closeButton.addEventListener("click", () => { if (socket) socket.close(1000); });
  window.addEventListener("resize", resize);
  // Typing in the command box picks "a command".
  document.getElementById("console-command").addEventListener("focus", () => {
    form.querySelector("input[name=shell][value='']").checked = true;
  });
})();
