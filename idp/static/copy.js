/* Copy buttons of the admin pages (the app hand-off page): a button with data-copy="<id>"
 * copies the text of the element with that id. A static file, no inline script: the CSP
 * (script-src 'self') holds. Words come from #copy-messages, translated with the page. */
(function () {
  "use strict";
  var words = document.getElementById("copy-messages");
  var status = document.getElementById("copy-status");

  function say(key) {
    if (status && words) { status.textContent = words.dataset[key] || ""; }
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      if (!source) { return; }
      var text = source.textContent.trim();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { say("copied"); },
          function () { selectText(source); say("failed"); });
      } else {
        selectText(source);
        say("failed");
      }
    });
  });
})();
