// Live updates: one websocket per page to /ws/live/. Elements with
// data-live-topics="a b" subscribe to those topics; each event carries an HTML
// fragment. A fragment element whose id is already on the page replaces it;
// otherwise it is prepended to the data-live-into container that asked for the
// topic (trimmed to data-live-limit rows), if it matches the container's
// data-live-accept selector when there is one. htmx then wires up the new content.
// After a lost connection (or when the server says events were lost, "resync"),
// "portal:resync" asks page.js to re-read every part of the page that can be.
(function () {
  "use strict";
  const status = document.getElementById("live-status");
  const containers = Array.from(document.querySelectorAll("[data-live-topics]"));
  const topics = new Set();
  containers.forEach((el) => el.dataset.liveTopics.split(/\s+/).filter(Boolean).forEach((t) => topics.add(t)));
  if (!status) return; // signed out: nothing to subscribe to

  let delay = 500;
  let failures = 0;
  let lost = false; // a connection was lost since the page (or the last resync) was read
  // Replay: the page was rendered at data-since; each topic's events after that (or after
  // the last one seen, once one arrived) are sent again on subscribing, so nothing
  // published between the render and the subscription, or while reconnecting, is missed.
  const since = {};
  topics.forEach((t) => {
    if (status.dataset.since) since[t] = status.dataset.since;
  });
  //: The portal's "try again later" close (at capacity, or Redis away): wait longer.
  const TRY_LATER = 4013;
  //: What the header says in each state: the truth about the socket, not a fixed word.
  const LABELS = {
    connecting: ["Connecting", "Live updates: connecting"],
    live: ["Live", "Live updates: on"],
    partial: ["Live (partly)", "Live updates: on, but some of this page's topics were refused"],
    reconnecting: ["Reconnecting", "Live updates: lost, reconnecting; this page may be out of date"],
    offline: ["Offline", "Live updates: off (the portal cannot be reached); this page may be out of date"],
    busy: ["Busy", "Live updates: the portal asked to try again later; retrying"],
  };
  const label = status.querySelector(".live-label");

  function setState(state) {
    const [text, title] = LABELS[state] || [state, state];
    status.dataset.state = state;
    status.title = title;
    if (label) label.textContent = text;
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

  function resync() {
    lost = false;
    document.dispatchEvent(new CustomEvent("portal:resync"));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/live/");
    socket.addEventListener("open", () => {
      if (topics.size) {
        setState("connecting");
        socket.send(JSON.stringify({ subscribe: Array.from(topics), since: since }));
      } else {
        delay = 500;
        failures = 0;
        setState("live");
      }
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.subscribed) {
        // Healed only once the subscription answered: a handshake that then fails is no cure.
        delay = 500;
        failures = 0;
        setState(message.refused.length ? "partial" : "live");
        // Without a position (the portal could not give one) a reconnect re-reads instead.
        if (lost && !status.dataset.since) resync();
        lost = false;
        return;
      }
      if (message.resync) {
        resync(); // the server lost events meant for this page (Redis was away)
        return;
      }
      if (message.error) return;
      if (message.topic && message.seq) since[message.topic] = message.seq;
      apply(message);
      document.dispatchEvent(new CustomEvent("portal:live", { detail: message }));
    });
    socket.addEventListener("close", (event) => {
      // Reconnect with backoff: a restarted portal or a dropped network heals itself.
      failures += 1;
      lost = true;
      if (event.code === TRY_LATER) {
        delay = Math.max(delay, 5000);
        setState("busy");
      } else {
        setState(failures > 3 || navigator.onLine === false ? "offline" : "reconnecting");
      }
      setTimeout(connect, delay * (0.75 + Math.random() / 2)); // jittered: no reconnect storm
      delay = Math.min(delay * 2, 15000);
    });
  }
  connect();
})();
