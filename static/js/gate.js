// Gate page: a form whose confirm() question was answered yes skips the confirmation page.
(function () {
  "use strict";
  // app.js asks data-confirm questions in the capture phase and stops the event on "no",
  // so this bubbling listener only runs once the person agreed.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-gate-confirm")) return;
    var confirmed = form.querySelector("input[name=confirmed]");
    if (confirmed) confirmed.value = "yes";
  });

  // The expiry date only matters with "Until a date…".
  var select = document.getElementById("pass-expires");
  var date = document.getElementById("pass-expires_on");
  if (select && date) {
    var field = date.closest(".field");
    var sync = function () { if (field) field.hidden = select.value !== "date"; };
    select.addEventListener("change", sync);
    sync();
  }

  // The share, networks and user ids only matter with "Only these visitors".
  var some = document.getElementById("gate-some");
  var radios = document.querySelectorAll("input[name='who-who']");
  if (some && radios.length) {
    var toggle = function () {
      var everyone = document.querySelector("input[name='who-who'][value='everyone']");
      some.hidden = Boolean(everyone && everyone.checked);
    };
    radios.forEach(function (radio) { radio.addEventListener("change", toggle); });
    toggle();
  }
})();
