// Live updates: one websocket per page to /ws/live/. Elements with
// data-live-topics="a b" subscribe to those topics; each event carries an HTML
// fragment. A fragment element whose id is already on the page replaces it;
// otherwise it is prepended to the data-live-into container that asked for the
// topic (trimmed to data-live-limit rows), if it matches the container's
// data-live-accept selector when there is one. htmx then wires up the new content.
(function () {
  "use strict";
  const status = document.getElementById("live-status");
  const containers = Array.from(document.querySelectorAll("[data-live-topics]"));
  const topics = new Set();
  containers.forEach((el) => el.dataset.liveTopics.split(/\s+/).filter(Boolean).forEach((t) => topics.add(t)));
  if (!status) return; // signed out: nothing to subscribe to

  let delay = 500;

  function setState(state) {
    status.dataset.state = state;
    status.title = "Live updates: " + state;
  }

  function containerFor(topic) {
    return containers.find(
      (el) => el.hasAttribute("data-live-into") && el.dataset.liveTopics.split(/\s+/).includes(topic),
    );
  }

  function apply(message) {
    if (!message.html) return;
    const template = document.createElement("template");
    template.innerHTML = message.html.trim();
    Array.from(template.content.children).forEach((fragment) => {
      const existing = fragment.id ? document.getElementById(fragment.id) : null;
      if (existing) {
        existing.replaceWith(fragment);
      } else {
        const into = containerFor(message.topic);
        if (!into) return;
        if (into.dataset.liveAccept && !fragment.matches(into.dataset.liveAccept)) return;
        into.querySelectorAll(".empty-row").forEach((row) => row.remove());
        // Lists are newest first, unless they read like a log (data-live-order="oldest-first").
        const oldestFirst = into.dataset.liveOrder === "oldest-first";
        if (oldestFirst) into.append(fragment);
        else into.prepend(fragment);
        const limit = parseInt(into.dataset.liveLimit || "0", 10);
        while (limit && into.children.length > limit) {
          (oldestFirst ? into.firstElementChild : into.lastElementChild).remove();
        }
      }
      if (window.htmx) window.htmx.process(fragment);
    });
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/live/");
    socket.addEventListener("open", () => {
      delay = 500;
      setState("connected");
      if (topics.size) socket.send(JSON.stringify({ subscribe: Array.from(topics) }));
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.subscribed) {
        setState(message.refused.length ? "partial" : "live");
        return;
      }
      apply(message);
      document.dispatchEvent(new CustomEvent("portal:live", { detail: message }));
    });
    socket.addEventListener("close", () => {
      // Reconnect with backoff: a restarted portal or a dropped network heals itself.
      setState("reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }
  connect();
})();
