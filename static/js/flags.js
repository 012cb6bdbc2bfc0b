// Darklaunch flags pages: one-click toggles, confirmation dialogs, editor rows, checks as you type.
// Every form here works without this file; it only makes the same forms quicker to use.
(function () {
  "use strict";

  // ---- status messages (one aria-live region per page) ------------------------------------------
  var statusTimer = null;

  function statusRegion() {
    var region = document.getElementById("flag-status");
    if (!region) {
      region = document.createElement("p");
      region.id = "flag-status";
      region.className = "toast";
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      region.hidden = true;
      document.body.appendChild(region);
    }
    return region;
  }

  function announce(message, isError) {
    var region = statusRegion();
    region.textContent = message;
    region.classList.toggle("error", !!isError);
    region.hidden = false;
    window.clearTimeout(statusTimer);
    statusTimer = window.setTimeout(function () { region.hidden = true; }, isError ? 10000 : 4000);
  }

  // ---- toggles ----------------------------------------------------------------------------------
  function field(form, name) {
    return form.querySelector('input[name="' + name + '"]');
  }

  function showState(form, enabled, version) {
    var button = form.querySelector(".switch");
    button.setAttribute("aria-checked", enabled ? "true" : "false");
    button.classList.remove("failed");
    var word = button.querySelector(".switch-word");
    if (word) word.textContent = enabled ? "On" : "Off";
    field(form, "enabled").value = enabled ? "0" : "1";
    var card = form.closest(".env-card");
    if (card) card.classList.toggle("is-on", enabled);
    if (version === undefined || version === null) return;
    // Every other form on the page that edits this environment now builds on the new version.
    var env = form.getAttribute("data-env");
    var scope = card || form;
    var inputs = scope.querySelectorAll('input[name="version"]');
    for (var i = 0; i < inputs.length; i++) inputs[i].value = String(version);
    var copies = document.querySelectorAll('input[name="version-' + env + '"]');
    for (var j = 0; j < copies.length; j++) copies[j].value = String(version);
    var shown = scope.querySelector("[data-version]");
    if (shown) shown.textContent = String(version);
  }

  // The server refused (any non-2xx): the switch must not keep claiming a state the server does
  // not have. It shows what the page showed before the click at once, and then what the
  // server holds now (a stale tab's flag may have been changed by someone else meanwhile).
  function refused(form, message) {
    var button = form.querySelector(".switch");
    var shown = button.getAttribute("aria-checked") === "true";
    showState(form, shown);
    button.classList.add("failed");
    announce(message, true);
    if (!window.DOMParser) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok && !response.redirected ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelectorAll("form.toggle");
        for (var i = 0; i < fresh.length; i++) {
          var other = fresh[i];
          if (other.getAttribute("data-flag") !== form.getAttribute("data-flag")) continue;
          if (other.getAttribute("data-env") !== form.getAttribute("data-env")) continue;
          var now = other.querySelector(".switch").getAttribute("aria-checked") === "true";
          showState(form, now);
          // Only this switch builds on the server's version: other forms stay stale on purpose.
          var version = other.querySelector('input[name="version"]');
          if (version) field(form, "version").value = version.value;
          button.classList.add("failed");
          return;
        }
      })
      .catch(function () { /* the message is shown; a reload shows the rest */ });
  }

  function sendToggle(form) {
    var button = form.querySelector(".switch");
    if (button.getAttribute("aria-busy") === "true") return;
    var data = new FormData(form);
    data.set("confirmed", "1"); // asked already where the environment needs it
    button.setAttribute("aria-busy", "true");
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": data.get("csrf_token") || "" }
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (response.ok && body && typeof body.enabled === "boolean") {
          showState(form, body.enabled, body.version);
          announce(body.message || "Saved.", false);
          return;
        }
        var message = body && body.error && body.error.message
          ? body.error.message
          : "The change was not saved (HTTP " + response.status + "). Reload and try again.";
        refused(form, message);
      });
    }).catch(function () {
      refused(form, "The server could not be reached; nothing was changed.");
    }).then(function () {
      button.removeAttribute("aria-busy");
    });
  }

  var dialog = null;

  function confirmDialog() {
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.id = "flag-confirm";
    dialog.setAttribute("aria-labelledby", "flag-confirm-title");
    dialog.setAttribute("aria-describedby", "flag-confirm-text");
    var form = document.createElement("form");
    form.method = "dialog";
    var title = document.createElement("h2");
    title.id = "flag-confirm-title";
    var text = document.createElement("p");
    text.id = "flag-confirm-text";
    var actions = document.createElement("div");
    actions.className = "actions";
    var cancel = document.createElement("button");
    cancel.className = "button subtle";
    cancel.value = "cancel";
    cancel.textContent = "Cancel";
    var ok = document.createElement("button");
    ok.className = "button primary";
    ok.value = "confirm";
    ok.setAttribute("data-confirm-button", "");
    actions.appendChild(cancel);
    actions.appendChild(ok);
    form.appendChild(title);
    form.appendChild(text);
    form.appendChild(actions);
    dialog.appendChild(form);
    document.body.appendChild(dialog);
    return dialog;
  }

  function askThenSend(form) {
    var flag = form.getAttribute("data-flag");
    var env = form.getAttribute("data-env");
    var turningOn = field(form, "enabled").value === "1";
    var word = turningOn ? "on" : "off";
    var strategies = parseInt(form.getAttribute("data-strategies") || "", 10);
    var box = confirmDialog();
    box.querySelector("h2").textContent = "Turn " + flag + " " + word + " in " + env + "?";
    var text;
    if (!turningOn) {
      text = "Everyone in " + env + " gets it off, whatever its strategies say.";
    } else if (strategies === 0) {
      text = "It has no strategies in " + env + ", so it will be on for everyone.";
    } else if (strategies > 0) {
      text = "It will be on where its " + (strategies === 1 ? "strategy matches" : strategies + " strategies match") + " in " + env + ".";
    } else {
      text = "It will be on where its strategies match in " + env + ".";
    }
    box.querySelector("p").textContent = text;
    box.querySelector("[data-confirm-button]").textContent = "Turn " + word + " in " + env;
    box.returnValue = "";
    var button = form.querySelector(".switch");
    box.addEventListener("close", function onClose() {
      box.removeEventListener("close", onClose);
      if (box.returnValue === "confirm") {
        sendToggle(form);
      } else {
        announce("Nothing changed: " + flag + " stays " + (turningOn ? "off" : "on") + " in " + env + ".", false);
      }
      button.focus();
    });
    box.showModal();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("toggle")) return;
    if (!window.fetch || !window.FormData) return; // the plain form still works
    event.preventDefault();
    if (form.hasAttribute("data-confirm-toggle") && typeof HTMLDialogElement === "function") {
      askThenSend(form);
    } else if (form.hasAttribute("data-confirm-toggle")) {
      var on = field(form, "enabled").value === "1";
      var question = "Turn " + form.getAttribute("data-flag") + " " + (on ? "on" : "off") + " in " + form.getAttribute("data-env") + "?";
      if (window.confirm(question)) sendToggle(form);
    } else {
      sendToggle(form);
    }
  });

  // Filters apply with their Apply button only: a choice never reloads the page by itself
  // (WCAG 3.2.2, a keyboard user's ArrowDown through a list would otherwise navigate away).

  // ---- editor rows: add and remove without a round trip ------------------------------------------
  function renumber(container) {
    var numbers = container.querySelectorAll("[data-row] [data-row-number]");
    for (var i = 0; i < numbers.length; i++) numbers[i].textContent = String(i + 1);
  }

  function nextIndex(container, name) {
    var highest = -1;
    var pattern = new RegExp("^" + name + "-(\\d+)-");
    var inputs = container.querySelectorAll("[name]");
    for (var i = 0; i < inputs.length; i++) {
      var match = pattern.exec(inputs[i].getAttribute("name"));
      if (match) highest = Math.max(highest, parseInt(match[1], 10));
    }
    return highest + 1;
  }

  document.addEventListener("click", function (event) {
    var add = event.target.closest ? event.target.closest("[data-add-row]") : null;
    if (add) {
      var name = add.getAttribute("data-add-row");
      var form = add.form;
      var container = form.querySelector('[data-rows="' + name + '"]');
      var template = form.querySelector('template[data-row-template="' + name + '"]');
      if (!container || !template) return;
      event.preventDefault();
      var html = template.innerHTML.replace(/__index__/g, String(nextIndex(container, name)));
      var holder = document.createElement("div");
      holder.innerHTML = html;
      var row = holder.firstElementChild;
      container.appendChild(row);
      renumber(container);
      setUp(row);
      var first = row.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
      return;
    }
    var remove = event.target.closest ? event.target.closest("[data-remove-row]") : null;
    if (remove) {
      var rowToGo = remove.closest("[data-row]");
      var rows = rowToGo && rowToGo.parentElement;
      if (!rowToGo) return;
      event.preventDefault();
      var legend = rowToGo.querySelector("legend");
      rowToGo.remove();
      renumber(rows);
      announce((legend ? legend.textContent.trim() : "Row") + " removed (saved when you save the form).", false);
    }
  });

  // ---- checks as you type (the server checks again and has the last word) -------------------------
  var IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  var IPV6 = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/;

  function isAddressOrRange(value) {
    var parts = value.split("/");
    if (parts.length > 2) return false;
    var address = parts[0];
    var v4 = IPV4.test(address);
    var v6 = !v4 && IPV6.test(address) && address.indexOf(":::") === -1;
    if (!v4 && !v6) return false;
    if (parts.length === 2) {
      if (!/^\d{1,3}$/.test(parts[1])) return false;
      var bits = parseInt(parts[1], 10);
      return bits <= (v4 ? 32 : 128);
    }
    return true;
  }

  function splitValues(text) {
    var trimmed = text.trim();
    if (!trimmed) return [];
    var parts = trimmed.indexOf("\n") >= 0 ? trimmed.split("\n") : trimmed.split(",");
    return parts.map(function (p) { return p.trim(); }).filter(function (p) { return p; });
  }

  function setLiveError(input, message, initial) {
    var wrapper = input.closest(".field");
    if (!wrapper) return;
    var serverError = wrapper.querySelector(".error:not([data-live-error])");
    if (serverError) {
      if (initial) return; // the server already said what is wrong with this value
      serverError.remove(); // it spoke about the value before this edit
      wrapper.classList.remove("has-error");
      input.removeAttribute("aria-invalid");
    }
    var note = wrapper.querySelector("[data-live-error]");
    if (!message) {
      if (note) note.remove();
      wrapper.classList.remove("live-error");
      return;
    }
    if (!note) {
      note = document.createElement("p");
      note.className = "error";
      note.setAttribute("data-live-error", "");
      note.id = input.id + "-live-error";
      wrapper.appendChild(note);
      var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf(note.id) === -1) described.push(note.id);
      input.setAttribute("aria-describedby", described.join(" "));
    }
    note.textContent = message;
    wrapper.classList.add("live-error");
  }

  function singleValueOperators(form) {
    return (form.getAttribute("data-single-value-operators") || "").split(",");
  }

  var PLACEHOLDERS = {
    NUM: "a number, e.g. 42",
    DATE: "e.g. 2026-12-01T09:00:00Z",
    SEMVER: "a version, e.g. 1.2.3",
    REGEX: "a regular expression, e.g. ^beta-",
    IN_CIDR: "e.g. 10.0.0.0/8, 192.168.1.7",
    LIST: "e.g. NO, SE, DK"
  };

  function operatorKind(operator) {
    if (/^NUM_/.test(operator)) return "NUM";
    if (/^DATE_/.test(operator)) return "DATE";
    if (/^SEMVER_/.test(operator)) return "SEMVER";
    if (operator === "REGEX") return "REGEX";
    if (operator === "IN_CIDR") return "IN_CIDR";
    return "LIST";
  }

  function checkConstraintValues(row, initial) {
    var form = row.closest("form");
    var operatorSelect = row.querySelector("[data-operator]");
    var values = row.querySelector("[data-values]");
    if (!operatorSelect || !values || !form) return;
    var operator = operatorSelect.value;
    var kind = operatorKind(operator);
    var single = singleValueOperators(form).indexOf(operator) >= 0;
    values.placeholder = PLACEHOLDERS[kind];
    var hint = document.getElementById(values.id + "-hint");
    if (hint) hint.textContent = single ? operator + " compares with one value." : "Separate values with commas or new lines.";
    var text = values.value;
    var message = "";
    if (text.trim()) {
      var lines = text.split("\n").filter(function (l) { return l.trim(); });
      if (single && lines.length > 1) {
        message = operator + " compares with one value: enter just one.";
      } else if (single && kind === "NUM" && isNaN(Number(text.trim()))) {
        message = operator + " needs a number.";
      } else if (single && kind === "SEMVER" && !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(text.trim())) {
        message = operator + " needs a version like 1.2.3.";
      } else if (single && kind === "DATE" && isNaN(Date.parse(text.trim()))) {
        message = operator + " needs a date and time like 2026-12-01T09:00:00Z.";
      } else if (kind === "REGEX") {
        try { new RegExp(text.trim()); } catch (e) { message = "The regular expression does not compile."; }
      } else if (kind === "IN_CIDR") {
        var bad = splitValues(text).filter(function (v) { return !isAddressOrRange(v); });
        if (bad.length) message = "Not an IP address or CIDR range: " + bad.join(", ");
      }
    }
    setLiveError(values, message, initial);
  }

  function checkRollout(input) {
    var value = input.value.trim();
    var ok = /^\d{1,3}$/.test(value) && parseInt(value, 10) <= 100;
    setLiveError(input, ok ? "" : "Rollout is a whole percentage from 0 to 100.");
    var range = input.parentElement.querySelector('input[type="range"]');
    if (range && ok) range.value = value;
  }

  function checkAddresses(textarea) {
    var bad = splitValues(textarea.value).filter(function (v) { return !isAddressOrRange(v); });
    setLiveError(textarea, bad.length ? "Not an IP address or CIDR range: " + bad.join(", ") : "");
  }

  function showStrategyParams(form) {
    var checked = form.querySelector("[data-strategy-choice]:checked");
    if (!checked) return;
    var groups = form.querySelectorAll("[data-params]");
    for (var i = 0; i < groups.length; i++) {
      // A group may serve several strategies (custom ones share one): names are space-separated.
      groups[i].hidden = groups[i].getAttribute("data-params").split(" ").indexOf(checked.value) < 0;
    }
  }

  function showCustomStickiness(form) {
    var select = form.querySelector("[data-stickiness]");
    var custom = form.querySelector("[data-stickiness-custom]");
    if (select && custom) custom.hidden = select.value !== "custom";
  }

  function showWeight(row) {
    var type = row.querySelector("[data-weight-type]");
    var weight = row.querySelector("[data-weight]");
    if (!type || !weight) return;
    // A variable share is computed by the server: the box is kept in place but not sent.
    var fixed = type.value === "fix";
    weight.disabled = !fixed;
    weight.placeholder = fixed ? "e.g. 25" : "split evenly";
  }

  function addRolloutSlider(input) {
    if (input.getAttribute("data-has-slider")) return;
    input.setAttribute("data-has-slider", "1");
    var pair = document.createElement("div");
    pair.className = "rollout-pair";
    var range = document.createElement("input");
    range.type = "range";
    range.min = "0";
    range.max = "100";
    range.step = "1";
    range.value = /^\d+$/.test(input.value) ? input.value : "100";
    range.setAttribute("aria-label", "Rollout percentage slider");
    range.setAttribute("tabindex", "-1"); // the number box is the control for keyboards
    input.parentNode.insertBefore(pair, input);
    pair.appendChild(range);
    pair.appendChild(input);
    range.addEventListener("input", function () {
      input.value = range.value;
      checkRollout(input);
    });
  }

  function setUp(root) {
    var rows = root.matches && root.matches("[data-row]") ? [root] : root.querySelectorAll("[data-row]");
    for (var i = 0; i < rows.length; i++) {
      checkConstraintValues(rows[i], true);
      showWeight(rows[i]);
    }
  }

  function setUpForm(form) {
    showStrategyParams(form);
    showCustomStickiness(form);
    var rollout = form.querySelector("[data-rollout]");
    if (rollout) addRolloutSlider(rollout);
    setUp(form);
    form.addEventListener("change", function (event) {
      var target = event.target;
      if (target.hasAttribute("data-strategy-choice")) showStrategyParams(form);
      if (target.hasAttribute("data-stickiness")) showCustomStickiness(form);
      var row = target.closest("[data-row]");
      if (row && target.hasAttribute("data-operator")) checkConstraintValues(row);
      if (row && target.hasAttribute("data-weight-type")) showWeight(row);
    });
    form.addEventListener("input", function (event) {
      var target = event.target;
      if (target.hasAttribute("data-rollout")) checkRollout(target);
      if (target.hasAttribute("data-ips")) checkAddresses(target);
      var row = target.closest("[data-row]");
      if (row && target.hasAttribute("data-values")) checkConstraintValues(row);
    });
  }

  function start() {
    var forms = document.querySelectorAll("[data-strategy-form], [data-variants-form]");
    for (var i = 0; i < forms.length; i++) setUpForm(forms[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
