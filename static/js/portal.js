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

  // Time zones: on a first visit, the browser's zone becomes the pages' (a cookie the
  // server reads, then the account's at sign-up). When pages use another zone than the
  // device's (an account set elsewhere, a trip), offer the device's, until kept.
  function deviceZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  // Two names of one clock (Asia/Kolkata and Asia/Calcutta) are the same zone.
  function sameZone(a, b) {
    try {
      var resolve = function (zone) {
        return new Intl.DateTimeFormat("en", { timeZone: zone }).resolvedOptions().timeZone;
      };
      return a === b || resolve(a) === resolve(b);
    } catch (error) {
      return a === b;
    }
  }

  function setCookie(name, value) {
    var secure = window.location.protocol === "https:" ? "; secure" : "";
    document.cookie = name + "=" + value + "; path=/; max-age=31536000; samesite=lax" + secure;
  }

  function hasCookie(name, value) {
    return document.cookie.split("; ").indexOf(name + "=" + value) !== -1;
  }

  function zones() {
    var root = document.documentElement;
    var device = deviceZone();
    if (!device || !/^[A-Za-z0-9_+\-/]+$/.test(device) || sameZone(device, root.dataset.tz)) {
      return;
    }
    if (!root.dataset.tzKnown) {
      setCookie("tz", device);
      if (!window.sessionStorage.getItem("tz-detected")) {
        window.sessionStorage.setItem("tz-detected", "1"); // once: never a reload loop
        window.location.reload();
      }
      return;
    }
    var offer = document.querySelector("[data-tz-offer]");
    if (!offer || hasCookie("tz_kept", device)) {
      return;
    }
    offer.elements.namedItem("timezone").value = device;
    offer.querySelector("[data-tz-device]").textContent = device.replace(/_/g, " ");
    offer.hidden = false;
  }

  // Zone pickers: a search box above each, which keeps the zones whose name matches.
  function zoneSearch(root) {
    root.querySelectorAll("select[data-zone-picker]:not([data-searchable])").forEach(function (select) {
      select.setAttribute("data-searchable", "");
      var search = document.createElement("input");
      search.type = "search";
      search.className = "zone-search";
      search.placeholder = select.dataset.searchLabel || "";
      search.setAttribute("aria-label", search.placeholder);
      search.setAttribute("aria-controls", select.id);
      select.parentNode.insertBefore(search, select);
      search.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault(); // choosing happens in the list, not by sending the form
        }
      });
      // Without case or accents: "le caire" finds Le Caire, "sao paulo" São Paulo.
      function plain(text) {
        return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
      }
      search.addEventListener("input", function () {
        var words = plain(search.value.trim());
        var first = null;
        select.querySelectorAll("option").forEach(function (option) {
          var found = plain(option.value).indexOf(words.replace(/ /g, "_")) !== -1 ||
            plain(option.dataset.names || "").indexOf(words) !== -1;
          option.hidden = Boolean(words) && !found;
          if (!option.hidden && first === null && words) {
            first = option;
          }
        });
        if (first !== null && select.value !== first.value) {
          select.value = first.value; // the first match is the one chosen
          select.dispatchEvent(new Event("change", { bubbles: true }));
        }
        select.querySelectorAll("optgroup").forEach(function (group) {
          group.hidden = !Array.prototype.some.call(group.children, function (o) { return !o.hidden; });
        });
      });
    });
  }

  function ready() {
    zones();
    zoneSearch(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
  document.addEventListener("htmx:afterSwap", function (event) {
    zoneSearch(event.target);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target === document.body) {
      zones(); // a boosted page: the offer of the device's zone, again
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) {
      return;
    }
    if (target.closest("[data-tz-keep]")) {
      setCookie("tz_kept", deviceZone()); // not offered again for this device's zone
      target.closest("[data-tz-offer]").hidden = true;
    } else if (target.closest("[data-print]")) {
      window.print(); // the usage statement's Print button
    } else if (target instanceof HTMLInputElement && target.hasAttribute("data-select")) {
      target.select(); // an address to copy, selected whole in one click
    }
  });
})();
