// Announcement editor: live side-by-side preview. The server renders and sanitises the
// Markdown (the same code the changelog uses); without this file the Preview button does it.
(function () {
  "use strict";

  var form = document.getElementById("editor");
  if (!form) return;
  var url = form.getAttribute("data-preview-url");
  var token = form.querySelector('input[name="csrf_token"]');
  var field = function (id) { return form.querySelector("#" + id); };
  var part = function (name) { return document.querySelector("[data-preview-" + name + "]"); };
  var body = field("body");
  var state = part("state");
  var out = part("body");

  // Errors: move focus to the summary so keyboard and screen reader users start there; once a
  // field is changed, its error (and its line in the summary) goes, so no stale message stays
  // under a field that may now be right. The server checks again on the next save.
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
  form.addEventListener("input", clearError);
  form.addEventListener("change", clearError);
  function clearError(event) {
    var input = event.target;
    if (!input || !input.id || input.getAttribute("aria-invalid") !== "true") return;
    input.removeAttribute("aria-invalid");
    var message = document.getElementById(input.id + "-error");
    if (message) message.remove();
    var hint = document.getElementById(input.id + "-hint");
    if (hint) input.setAttribute("aria-describedby", hint.id);
    else input.removeAttribute("aria-describedby");
    var wrapper = input.closest(".field");
    if (wrapper) wrapper.classList.remove("has-error");
    if (summary) {
      var line = summary.querySelector('[data-error-for="' + input.id + '"]');
      if (line) line.remove();
      if (!summary.querySelector("li") && !summary.querySelector("p")) summary.remove();
    }
  }

  var button = form.querySelector(".ann-preview-button");
  if (button) button.hidden = true;

  // A new announcement starts in the browser's own time zone when the list knows it.
  if (form.hasAttribute("data-guess-zone") && window.Intl) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var input = field("timezone");
    var choices = document.getElementById("timezone-choices");
    if (zone && input && choices) {
      for (var i = 0; i < choices.options.length; i++) {
        if (choices.options[i].value === zone) { input.value = zone; break; }
      }
    }
  }

  var timer = null;
  var sequence = 0;
  function render() {
    var mine = ++sequence;
    state.textContent = "updating…";
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": token ? token.value : ""
      },
      body: JSON.stringify({ body: body.value })
    }).then(function (response) {
      if (!response.ok) throw new Error("preview failed: " + response.status);
      return response.json();
    }).then(function (data) {
      if (mine !== sequence) return; // a newer keystroke's answer wins
      out.innerHTML = data.html; // already sanitised by the server (nh3 allow-list)
      state.textContent = "";
    }).catch(function () {
      if (mine === sequence) state.textContent = "preview unavailable; Save shows the result";
    });
  }
  if (body && out && url) {
    body.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(render, 300);
    });
  }

  function mirror(id, name, apply) {
    var input = field(id);
    var target = part(name);
    if (!input || !target) return;
    var update = function () { apply(target, input.value.trim(), input); };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  }
  mirror("title", "title", function (target, value) { target.textContent = value || "Untitled"; });
  mirror("summary", "summary", function (target, value) {
    target.textContent = value;
    target.hidden = !value;
  });
  mirror("category", "category", function (target, value, input) {
    target.className = "cl-cat cl-cat-" + value;
    target.textContent = input.options[input.selectedIndex].text;
  });
  mirror("image_url", "image", function (target, value) {
    if (/^https:\/\/[^\s]+$/.test(value)) {
      target.src = value;
      target.hidden = false;
    } else {
      target.removeAttribute("src");
      target.hidden = true;
    }
  });
  mirror("image_alt", "image", function (target, value) { target.alt = value; });
})();
