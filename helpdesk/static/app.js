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
    // Presence heartbeat: say whether a reply is being written, never send the draft.
    if (event.detail.elt && event.detail.elt.id === "presence") {
      var draft = document.getElementById("reply-body");
      event.detail.parameters["replying"] = draft && draft.value.trim() ? "1" : "";
    }
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
  // The generic message only when the server sent none of its own (a 429 or 503 says why).
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail && evt.detail.xhr;
    if (xhr && xhr.getResponseHeader("HX-Trigger")) return;
    document.dispatchEvent(new CustomEvent("toast", { detail: { value: "Something went wrong; nothing was lost. Try again." } }));
  });
})();

// Keyboard shortcuts: j/k move in the ticket list, Enter or o opens, r reply, n note,
// / search, ? shows the shortcut sheet (the <dialog id="shortcut-sheet"> in base.html).
(function () {
  "use strict";
  var ROWS = '#ticket-rows tr[id^="ticket-"]';
  var current = { index: -1, id: null };

  function rows() { return Array.prototype.slice.call(document.querySelectorAll(ROWS)); }

  function isTyping(el) {
    if (!el || !el.closest) return false;
    if (el.isContentEditable || el.closest("textarea, select")) return true;
    if (el.tagName !== "INPUT") return false;
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(el.type) === -1;
  }

  function rowLink(row) {
    return row.querySelector("td.subject a[href]") || row.querySelector("a[href]");
  }

  // Highlight row i (clamped); `move` also scrolls it into view and focuses its link.
  function select(i, move) {
    var all = rows();
    all.forEach(function (r) { r.classList.remove("current-row"); r.removeAttribute("aria-current"); });
    if (!all.length || i < 0) { current = { index: -1, id: null }; return; }
    var row = all[Math.min(i, all.length - 1)];
    row.classList.add("current-row");
    row.setAttribute("aria-current", "true");
    current = { index: all.indexOf(row), id: row.id };
    if (!move) return;
    var link = rowLink(row);
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function step(delta) {
    var all = rows();
    var focused = document.activeElement && document.activeElement.closest(ROWS);
    var from = focused ? all.indexOf(focused) : current.index;
    select(from < 0 ? 0 : Math.max(0, from + delta), true);
  }

  // Rows are replaced by filters, search, "Next page" and bulk updates: keep the same
  // ticket selected when it is still listed, otherwise clamp the position. Never steal focus.
  function reselect() {
    if (current.index < 0) return;
    var same = current.id && document.getElementById(current.id);
    select(same && same.matches(ROWS) ? rows().indexOf(same) : current.index, false);
  }
  // After settling: htmx restores a swapped row's own attributes during the settle step,
  // which would drop a class set at htmx:afterSwap. Covers out-of-band row swaps too.
  document.addEventListener("htmx:afterSettle", reselect);

  function reply(internal) {
    var body = document.getElementById("reply-body");
    if (!body) return false;
    var value = internal ? "1" : "0";
    var radio = body.form && body.form.querySelector('input[name="internal"][value="' + value + '"]');
    if (internal && !radio) return false; // requesters cannot write internal notes
    if (radio) radio.checked = true;
    body.focus();
    return true;
  }

  var sheet = document.getElementById("shortcut-sheet");
  var returnFocus = null;
  function openSheet() {
    if (!sheet || sheet.open) return;
    returnFocus = document.activeElement;
    sheet.showModal();
  }
  function closeSheet() { if (sheet && sheet.open) sheet.close(); }
  if (sheet) {
    sheet.addEventListener("close", function () {
      if (returnFocus && returnFocus.isConnected && returnFocus.focus) returnFocus.focus();
      returnFocus = null;
    });
    sheet.addEventListener("click", function (event) {
      if (event.target.closest("[data-close-sheet]")) return closeSheet();
      // A click on the backdrop lands on the dialog itself, outside its box.
      var box = sheet.getBoundingClientRect();
      var inside = event.clientX >= box.left && event.clientX <= box.right &&
        event.clientY >= box.top && event.clientY <= box.bottom;
      if (event.target === sheet && !inside) closeSheet();
    });
  }

  var actions = {
    j: function () { if (!rows().length) return false; step(1); return true; },
    k: function () { if (!rows().length) return false; step(-1); return true; },
    o: function () {
      var row = rows()[current.index];
      var link = row && rowLink(row);
      if (!link) return false;
      link.click();
      return true;
    },
    r: function () { return reply(false); },
    n: function () { return reply(true); },
    "/": function () {
      var search = document.querySelector("input[name=q]");
      if (!search) return false;
      search.focus();
      search.select();
      return true;
    },
    "?": function () { if (!sheet) return false; openSheet(); return true; }
  };
  actions.Enter = actions.o;

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    var target = event.target;
    if (sheet && sheet.open) {
      // The modal sheet handles Escape and its own buttons; "?" closes it too.
      if (event.key === "?") { event.preventDefault(); closeSheet(); }
      return;
    }
    if (event.key === "Escape") {
      // Leave the field as it is (a search box would otherwise clear without searching).
      if (isTyping(target)) { event.preventDefault(); target.blur(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(target)) return;
    // Enter on a focused link, button or control keeps its own meaning.
    if (event.key === "Enter" && target.closest && target.closest("a[href], button, input, summary, [tabindex]")) return;
    if (event.repeat && event.key !== "j" && event.key !== "k") return;
    var action = Object.prototype.hasOwnProperty.call(actions, event.key) && actions[event.key];
    if (action && action()) event.preventDefault();
  });
})();

// Attachments: check the chosen files against the limits the server put on the input
// (data-max-files, data-max-bytes) before anything is sent, show the upload's progress,
// and let an upload form's 413/503 answer (the form with its message) replace the form.
(function () {
  "use strict";
  var FIELD = "input[type=file][data-max-bytes]";
  function size(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1).replace(/\.0$/, "") + " MB";
    return bytes >= 1024 ? Math.round(bytes / 1024) + " KB" : bytes + " bytes";
  }
  function problem(input) {
    var files = Array.prototype.slice.call(input.files || []);
    var most = Number(input.getAttribute("data-max-files"));
    var limit = Number(input.getAttribute("data-max-bytes"));
    if (most && files.length > most) return "Attach at most " + most + " files to one message (you chose " + files.length + ").";
    for (var i = 0; i < files.length; i++) {
      var f = files[i];
      if (!f.size) return f.name + " is empty: choose a file with something in it.";
      if (limit && f.size > limit) return f.name + " is " + size(f.size) + ": each file must be at most " + size(limit) + ".";
    }
    return "";
  }
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches(FIELD)) return;
    var message = problem(input);
    input.setCustomValidity(message); // the browser (and htmx) will not send the form
    var out = document.getElementById(input.getAttribute("aria-describedby"));
    if (out) out.textContent = message;
  });
  function progressOf(elt) {
    var form = elt && elt.matches && elt.matches("form[data-upload]") ? elt : null;
    var input = form && form.querySelector(FIELD);
    if (!input || !input.files || !input.files.length) return null;
    return form.querySelector("progress[data-upload-progress]");
  }
  // htmx reports the upload's and then the response's events: the first loadend ends the upload.
  document.addEventListener("htmx:xhr:loadstart", function (event) {
    var bar = progressOf(event.target);
    if (!bar || bar.hasAttribute("data-active")) return;
    bar.setAttribute("data-active", "");
    bar.removeAttribute("data-sent");
    bar.value = 0;
    bar.hidden = false;
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = progressOf(event.target), d = event.detail;
    if (!bar || bar.hasAttribute("data-sent") || !d.lengthComputable || !d.total) return;
    bar.value = Math.round((100 * d.loaded) / d.total);
  });
  document.addEventListener("htmx:xhr:loadend", function (event) {
    var bar = progressOf(event.target);
    if (bar) { bar.value = 100; bar.setAttribute("data-sent", ""); }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var bar = progressOf(event.target);
    if (bar) { bar.hidden = true; bar.removeAttribute("data-active"); }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var d = event.detail, status = d.xhr.status, from = d.requestConfig && d.requestConfig.elt;
    if ((status === 413 || status === 503) && from && from.matches && from.matches("form[data-upload]")) {
      d.shouldSwap = true; // the form comes back with the message; HX-Reswap: none keeps it as is
      d.isError = false;
    }
  });
})();
