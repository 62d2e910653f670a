// Small behaviours wired without inline script (the CSP forbids it).
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  // Every HTMX request carries the CSRF token as a header.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });
  // Toasts: the server sends HX-Trigger: {"toast": "Reply sent"}.
  document.addEventListener("toast", function (event) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var item = document.createElement("div");
    item.className = "toast";
    item.textContent = String(event.detail && event.detail.value ? event.detail.value : "Done");
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, 4000);
  });
  // A failed HTMX request (5xx, network) says so instead of failing silently.
  document.addEventListener("htmx:responseError", function () {
    document.dispatchEvent(new CustomEvent("toast", { detail: { value: "Something went wrong; nothing was lost. Try again." } }));
  });
})();
