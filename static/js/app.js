// Darklaunch: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Forms with data-confirm ask before submitting (e.g. revoking, production toggles).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // A message after a save shows where the page lands (e.g. #env-production after a strategy
  // save), not at the top of the page above the viewport.
  var flashes = document.querySelector(".flashes");
  var landing = window.location.hash ? document.getElementById(decodeURIComponent(window.location.hash.slice(1))) : null;
  if (flashes && landing && landing.id !== "main" && !landing.contains(flashes)) {
    var heading = landing.querySelector("h2, h3");
    if (heading && heading.parentNode) heading.parentNode.insertBefore(flashes, heading.nextSibling);
    else landing.insertBefore(flashes, landing.firstChild);
    landing.scrollIntoView();
  }

  // The main navigation folds behind a Menu button on narrow screens (CSS decides when it shows).
  var navToggle = document.querySelector(".nav-toggle");
  if (navToggle) {
    navToggle.hidden = false;
    navToggle.addEventListener("click", function () {
      var open = navToggle.getAttribute("aria-expanded") === "true";
      navToggle.setAttribute("aria-expanded", open ? "false" : "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && navToggle.getAttribute("aria-expanded") === "true") {
        navToggle.setAttribute("aria-expanded", "false");
        navToggle.focus();
      }
    });
  }

  // Buttons with data-copy="#selector" copy that field's value.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) return;
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    field.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();
