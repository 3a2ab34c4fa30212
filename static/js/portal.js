// What the pages do beyond htmx, kept out of the HTML: the Content-Security-Policy runs no
// inline script or event handler. Listeners sit on the document, so content htmx swaps in
// later works the same.
(function () {
  "use strict";

  // Booking: choosing "call, 30 min" sets the form's channel and duration. Listening in the
  // capture phase runs this before htmx (on the form) sends the form.
  document.addEventListener(
    "change",
    function (event) {
      var input = event.target;
      if (!(input instanceof HTMLInputElement) || !input.form || !input.dataset.channel) {
        return;
      }
      input.form.elements.namedItem("channel").value = input.dataset.channel;
      input.form.elements.namedItem("duration").value = input.dataset.duration;
    },
    true
  );

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) {
      return;
    }
    if (target.closest("[data-print]")) {
      window.print(); // the usage statement's Print button
    } else if (target instanceof HTMLInputElement && target.hasAttribute("data-select")) {
      target.select(); // an address to copy, selected whole in one click
    }
  });
})();
