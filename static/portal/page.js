// Small page behaviours, declared in the markup with data- attributes, so that no page
// needs an inline script or an on*= handler (the Content-Security-Policy allows none).
(function () {
  "use strict";

  // <form data-confirm="Really?">: ask before submitting.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.hasAttribute("data-no-submit")) {
      event.preventDefault();
      return;
    }
    const question = form.dataset.confirm;
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    // A form that arrived live (rendered once for every subscriber, without a request)
    // carries no CSRF token: give it the page's, the one htmx sends (body's hx-headers).
    if (form.method.toLowerCase() === "post" && !form.querySelector("[name=csrfmiddlewaretoken]")) {
      const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      if (headers["X-CSRFToken"]) {
        const token = document.createElement("input");
        token.type = "hidden";
        token.name = "csrfmiddlewaretoken";
        token.value = headers["X-CSRFToken"];
        form.append(token);
      }
    }
  });

  // <button data-copy="#selector">: copy that field's value to the clipboard.
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.value ?? source.textContent);
      button.textContent = "Copied";
    }
  });

  // <div data-live-topics="a b" data-refresh-url="URL">: a summary (a dashboard card, a
  // header badge) read again, whole, when one of its topics speaks. A burst of events
  // costs at most one read under way and one after it.
  const pending = new Map();
  function refresh(url) {
    const state = pending.get(url);
    if (state) {
      state.again = true;
      return;
    }
    pending.set(url, { again: false });
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        const current = document.querySelector(`[data-refresh-url="${CSS.escape(url)}"]`);
        if (html === null || !current) return;
        const template = document.createElement("template");
        template.innerHTML = html.trim();
        const fresh = template.content.firstElementChild;
        if (!fresh) return;
        current.replaceWith(fresh);
        if (window.htmx) window.htmx.process(fresh);
      })
      .finally(() => {
        const again = pending.get(url)?.again;
        pending.delete(url);
        if (again) refresh(url);
      });
  }
  document.addEventListener("portal:refresh", (event) => {
    const url = event.target instanceof Element ? event.target.dataset.refreshUrl : null;
    if (url) refresh(url);
  });
  document.addEventListener("portal:live", (event) => {
    const topic = event.detail && event.detail.topic;
    if (!topic) return;
    for (const el of document.querySelectorAll("[data-refresh-url][data-live-topics]")) {
      if (el.dataset.liveTopics.split(/\s+/).includes(topic)) refresh(el.dataset.refreshUrl);
    }
  });
})();

// Events were lost (a dropped connection, or Redis away on the server): re-read what can
// be re-read; a page with live lists and nothing to re-read them from asks for a reload.
(function () {
  "use strict";
  document.addEventListener("portal:resync", () => {
    // <tbody data-reread-url="URL">: a live list that can be read again whole.
    for (const target of document.querySelectorAll("[data-reread-url]")) {
      if (!window.htmx) break;
      window.htmx.ajax("GET", target.dataset.rereadUrl, { target: target, swap: "innerHTML" });
    }
    for (const el of document.querySelectorAll("[data-refresh-url]")) {
      el.dispatchEvent(new CustomEvent("portal:refresh", { bubbles: true }));
    }
    const status = document.getElementById("live-status");
    if (status && document.querySelector("[data-live-into]:not([data-reread-url])")) {
      status.dataset.state = "stale";
      status.title = "Live updates: back on; some events may have been missed while disconnected. Reload to see them.";
      const label = status.querySelector(".live-label");
      if (label) label.textContent = "Live (reload to catch up)";
    }
  });
})();
