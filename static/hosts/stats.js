// The last hour of a host's or a container's resources (hosts.stats), drawn with uPlot: CPU and
// memory; network and disk per second. The history comes once from hosts:stats_history; a host
// page then follows its live readings (project:P:host:H:stats, through window.portalStream from
// fleet.js), which also bring its five busiest containers. A container page asks again every
// 15 s: its own live chart's stream is what feeds its history.
(function () {
  "use strict";

  // After every deferred script has run: fleet.js, which gives portalStream, comes later on the page.
  document.addEventListener("DOMContentLoaded", start);

  function start() {
    const box = document.getElementById("resources");
    if (!box || !window.uPlot) return;
    const HOUR = 3600;
    const state = document.getElementById("resources-state");
    const cpuBox = document.getElementById("resources-cpu");
    const ioBox = document.getElementById("resources-io");
    let samples = [];

    function bytes(v) {
      if (v === null || v === undefined) return "–";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
      return (i ? v.toFixed(1) : String(Math.round(v))) + " " + units[i];
    }
    const perSecond = (v) => (v === null || v === undefined ? "–" : bytes(v) + "/s");
    const percent = (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + " %");

    function options(target, series, axes) {
      // The x scale is always the last hour, however few samples there are yet.
      const lastHour = () => [Date.now() / 1000 - HOUR, Date.now() / 1000];
      return {
        width: Math.max(240, target.clientWidth),
        height: 180,
        scales: { x: { time: true, range: lastHour } },
        series: [{}].concat(series),
        axes: [{}].concat(axes),
        legend: { live: true },
      };
    }
    const cpuChart = new window.uPlot(options(cpuBox, [
      { label: "CPU", stroke: "#0072a3", scale: "%", value: (u, v) => percent(v) },
      { label: "Memory", stroke: "#c25400", scale: "mem", value: (u, v) => bytes(v) },
    ], [
      { scale: "%", size: 60, values: (u, vals) => vals.map((v) => v + " %") },
      { scale: "mem", side: 1, size: 80, grid: { show: false }, values: (u, vals) => vals.map(bytes) },
    ]), [[], [], []], cpuBox);
    const ioChart = new window.uPlot(options(ioBox, [
      { label: "Network in", stroke: "#318700", value: (u, v) => perSecond(v) },
      { label: "Network out", stroke: "#5aa220", dash: [4, 4], value: (u, v) => perSecond(v) },
      { label: "Disk read", stroke: "#6870c4", value: (u, v) => perSecond(v) },
      { label: "Disk write", stroke: "#9460b8", dash: [4, 4], value: (u, v) => perSecond(v) },
    ], [{ size: 90, values: (u, vals) => vals.map(perSecond) }]), [[], [], [], [], []], ioBox);

    function draw() {
      const since = Date.now() / 1000 - HOUR;
      samples = samples.filter((s) => s.t >= since);
      const column = (key) => samples.map((s) => s[key]);
      cpuChart.setData([column("t"), column("cpu"), column("mem")]);
      ioChart.setData([column("t"), column("net_rx"), column("net_tx"), column("blk_r"), column("blk_w")]);
      box.dataset.samples = String(samples.length);
    }

    function load() {
      fetch(box.dataset.history, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.statusText))))
        .then((d) => { samples = d.samples; draw(); })
        .catch((e) => { state.textContent = "history: " + e.message; });
    }

    function cell(row, text, left) {
      const td = document.createElement("td");
      if (left) td.className = "left";
      td.textContent = text;
      row.appendChild(td);
      return td;
    }

    function showTop(rows) {
      const body = document.querySelector("#top-containers tbody");
      if (!body) return;
      body.textContent = "";
      if (!rows.length) {
        cell(body.insertRow(), "No running container.", true).colSpan = 5;
        return;
      }
      rows.forEach((r) => {
        const tr = body.insertRow();
        tr.className = "top-container";
        tr.dataset.container = r.id;
        const link = document.createElement("a");
        link.href = box.dataset.containerUrl.replace("000000000000", r.id);
        link.textContent = r.name;  // the engine's words: text, never markup
        cell(tr, "", true).appendChild(link);
        cell(tr, percent(r.cpu));
        cell(tr, bytes(r.mem));
        cell(tr, perSecond(r.net_rx) + " / " + perSecond(r.net_tx));
        cell(tr, perSecond(r.blk_r) + " / " + perSecond(r.blk_w));
      });
    }

    load();
    if (box.dataset.topic && window.portalStream) {
      window.portalStream(box.dataset.topic, (message) => {
        const d = message.data || {};
        if (d.error) { state.textContent = d.error; return; }
        state.textContent = "";
        if (d.host && (!samples.length || d.host.t - samples[samples.length - 1].t >= 4)) {
          samples.push(d.host);
          draw();
        }
        if (d.top) showTop(d.top);
      }, (s) => { if (s !== "following") state.textContent = s; });
    } else {
      setInterval(load, 15000);
    }
    window.addEventListener("resize", () => {
      cpuChart.setSize({ width: Math.max(240, cpuBox.clientWidth), height: 180 });
      ioChart.setSize({ width: Math.max(240, ioBox.clientWidth), height: 180 });
    });
  }
})();
