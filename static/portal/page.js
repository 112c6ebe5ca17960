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
    if (question && !window.confirm(question)) event.preventDefault();
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

  // <tbody data-reread-when-live="URL">: events published between the page's rendering
  // and its subscription would be lost, so once live, read the rows once more (later
  // changes arrive live).
  function rereadWhenLive() {
    const status = document.getElementById("live-status");
    if (!status || !window.htmx) return;
    for (const target of document.querySelectorAll("[data-reread-when-live]")) {
      const reread = () =>
        window.htmx.ajax("GET", target.dataset.rereadWhenLive, { target: target, swap: "innerHTML" });
      // The socket may be live already (it opens as soon as live.js runs).
      if (status.dataset.state === "live") {
        reread();
        continue;
      }
      const observer = new MutationObserver(() => {
        if (status.dataset.state !== "live") return;
        observer.disconnect();
        reread();
      });
      observer.observe(status, { attributes: true, attributeFilter: ["data-state"] });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", rereadWhenLive);
  else rereadWhenLive();
})();
