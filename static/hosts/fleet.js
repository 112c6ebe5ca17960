// The fleet pages' own behaviour on top of live.js (which swaps rows in by id):
// - the dashboard's counters are the sums of per-project count elements that
//   live events replace, so they stay exact whatever the user may see;
// - a container's logs and stats stream over their own connection to the one
//   consumer (/ws/live/): subscribing starts the engine follower, closing stops it.
(function () {
  "use strict";

  function sumCounters() {
    const counters = document.querySelectorAll("[data-count]");
    if (!counters.length) return;
    const parts = document.querySelectorAll(".fleet-counts");
    counters.forEach((el) => {
      const key = el.dataset.count;
      let total = 0;
      parts.forEach((p) => { total += parseInt(p.dataset[key] || "0", 10); });
      el.textContent = String(total);
    });
  }
  document.addEventListener("portal:live", sumCounters);

  function stream(topic, onMessage, onState) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/live/");
    socket.addEventListener("open", () => socket.send(JSON.stringify({ subscribe: [topic] })));
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.subscribed) {
        onState(message.refused.length ? "refused" : "following");
        return;
      }
      onMessage(message);
    });
    socket.addEventListener("close", () => onState("stopped"));
    return socket;
  }
  // For the pages' other scripts (static/hosts/stats.js) that follow a stream of their own.
  window.portalStream = stream;

  // -- logs --------------------------------------------------------------------
  const follow = document.getElementById("logs-follow");
  if (follow) {
    const stop = document.getElementById("logs-stop");
    const out = document.getElementById("logs");
    const state = document.getElementById("logs-state");
    let socket = null;
    follow.addEventListener("click", () => {
      if (socket) socket.close();
      out.textContent = "";
      const tail = Math.max(0, Math.min(5000, parseInt(document.getElementById("logs-tail").value || "100", 10)));
      socket = stream(follow.dataset.topic + ":" + tail, (message) => {
        // Text, never HTML: log lines are whatever the container printed.
        (message.data && message.data.lines || []).forEach((line) => { out.textContent += line + "\n"; });
        if (message.data && message.data.error) state.textContent = message.data.error;
        out.scrollTop = out.scrollHeight;
      }, (s) => {
        state.textContent = s;
        state.dataset.state = s;
        follow.disabled = s === "following";
        stop.disabled = s !== "following";
      });
    });
    stop.addEventListener("click", () => { if (socket) socket.close(); socket = null; });
  }

  // -- parts of a page read again on news (data-live-reload) --------------------
  // A host's images, volumes and networks (hosts.engine_objects.news), its drift
  // (hosts.changes.drift.host_topic): read again a second after the last news of them, as a
  // prune is many events; htmx asks the element's hx-get on its "live-reload".
  document.querySelectorAll("[data-live-reload]").forEach((part) => {
    if (!window.htmx) return;
    let pending = null;
    document.addEventListener("portal:live", (event) => {
      if (event.detail.topic !== part.dataset.liveTopics) return;
      if (pending) clearTimeout(pending);
      pending = setTimeout(() => {
        pending = null;
        window.htmx.trigger(part, "live-reload");
      }, 1000);
    });
  });

  // -- stats -------------------------------------------------------------------
  const chart = document.getElementById("stats-chart");
  if (chart) {
    // The plot area of stats_chart.html: x 40..320 (30 readings, 10 apart, newest at the
    // right), y 90 (zero) up to 10 (the scale's top).
    const cpu = [], mem = [];
    const points = (values, max) =>
      values
        .map((v, i) => `${320 - (values.length - 1 - i) * (280 / 29)},${90 - (v / (max || 1)) * 80}`)
        .join(" ");
    stream(chart.dataset.topic, (message) => {
      const d = message.data || {};
      if (d.cpu_percent === undefined) return;
      cpu.push(d.cpu_percent); mem.push(d.memory_bytes);
      if (cpu.length > 30) { cpu.shift(); mem.shift(); }
      const cpuTop = Math.max(100, ...cpu);
      const memTop = d.memory_limit || Math.max(...mem);
      document.getElementById("stats-cpu").setAttribute("points", points(cpu, cpuTop));
      document.getElementById("stats-mem").setAttribute("points", points(mem, memTop));
      document.getElementById("stats-cpu-top").textContent = cpuTop.toFixed(0) + " %";
      document.getElementById("stats-mem-top").textContent = (memTop / 1048576).toFixed(0) + " MiB";
      document.getElementById("stats-cpu-now").textContent = d.cpu_percent.toFixed(1) + " %";
      document.getElementById("stats-mem-now").textContent = (d.memory_bytes / 1048576).toFixed(1) + " MiB";
    }, () => {});
  }
})();
