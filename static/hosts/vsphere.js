// A VM page's action buttons follow the VM's power state live: live.js swaps in the
// summary (its data-power), and each button that cannot work in some power states
// carries them with why (data-pointless, from hosts.vsphere.services.POINTLESS), so it
// is disabled with that title, or enabled again, without reloading the page.
(function () {
  "use strict";

  function follow() {
    const summary = document.querySelector(".vm-summary[data-power]");
    if (!summary) return;
    document.querySelectorAll(".vm-actions button[data-pointless]").forEach((button) => {
      const why = JSON.parse(button.dataset.pointless)[summary.dataset.power] || "";
      button.disabled = Boolean(why);
      if (why) button.title = why;
      else button.removeAttribute("title");
    });
  }
  document.addEventListener("portal:live", follow);
})();
