// Keyboard shortcuts and select-all for the review queue. Everything also works without this file:
// the buttons are plain form submissions. No inline scripts anywhere (the CSP forbids them).
(function () {
  "use strict";

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll(".card[data-id]"));
  }

  var current = -1;

  function focusCard(index) {
    var list = cards();
    if (!list.length) return;
    index = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (el) { el.classList.remove("current"); });
    current = index;
    var card = list[index];
    card.classList.add("current");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  // After an action the page reloads; land on the comment that will then be next in line.
  function rememberNext(index) {
    var list = cards();
    var focus = document.getElementById("focus-field");
    var after = list[index + 1] || list[index - 1];
    if (focus && after) focus.value = after.getAttribute("data-id");
  }

  function act(key) {
    var list = cards();
    if (current < 0 || current >= list.length) return false;
    var button = list[current].querySelector('button[data-key="' + key + '"]');
    if (!button) return false;
    rememberNext(current);
    button.click();
    return true;
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" && target.type !== "checkbox" || tag === "TEXTAREA" || tag === "SELECT" ||
      (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    var key = event.key;
    if (key === "j") { focusCard(current + 1); event.preventDefault(); }
    else if (key === "k") { focusCard(current < 0 ? 0 : current - 1); event.preventDefault(); }
    else if (key === "a" || key === "s") { if (act(key)) event.preventDefault(); }
    else if (key === "x") {
      var list = cards();
      if (current >= 0 && list[current]) {
        var box = list[current].querySelector("input.select");
        if (box) { box.checked = !box.checked; event.preventDefault(); }
      }
    } else if (key === "u") {
      var undo = document.getElementById("undo-button");
      if (undo) { undo.click(); event.preventDefault(); }
    } else if (key === "Enter" && current >= 0) {
      var link = cards()[current].querySelector(".card-title a, .snippet a");
      if (link && document.activeElement === cards()[current]) { link.click(); event.preventDefault(); }
    }
  });

  document.addEventListener("click", function (event) {
    var card = event.target.closest && event.target.closest(".card[data-id]");
    if (card) {
      var index = cards().indexOf(card);
      if (index >= 0) {
        cards().forEach(function (el) { el.classList.remove("current"); });
        current = index;
        card.classList.add("current");
        if (event.target.closest("button[formaction]")) rememberNext(index);
      }
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "select-all") {
      var checked = event.target.checked;
      document.querySelectorAll("input.select").forEach(function (box) { box.checked = checked; });
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var hash = window.location.hash;
    var list = cards();
    if (!list.length) return;
    var target = hash ? document.getElementById(hash.slice(1)) : null;
    var index = target ? list.indexOf(target) : -1;
    if (index >= 0) focusCard(index);
    else if (document.querySelector("#queue-form") || list.length === 1) {
      current = 0;
      list[0].classList.add("current");
    }
  });
})();
