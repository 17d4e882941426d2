/* The order page's edit form: as you type, the server's own check of the edit (the
   validator a save runs, writing nothing) says what is wrong with it, or what it would
   change. */
(function () {
  "use strict";

  function render(box, answer) {
    box.textContent = "";
    var list = document.createElement("ul");
    if (answer.ok) {
      box.className = "sm-edit-check sm-edit-ok";
      box.appendChild(document.createTextNode("Saving now would change:"));
      answer.changes.forEach(function (change) {
        var item = document.createElement("li");
        var before = "before" in change ? JSON.stringify(change.before) : "(absent)";
        var after = "after" in change ? JSON.stringify(change.after) : "(removed)";
        item.textContent = change.path + ": " + before + " \u2192 " + after;
        list.appendChild(item);
      });
    } else {
      box.className = "sm-edit-check sm-edit-problems";
      box.appendChild(document.createTextNode("Not saved as it is:"));
      answer.errors.forEach(function (error) {
        var item = document.createElement("li");
        item.textContent = error;
        list.appendChild(item);
      });
    }
    box.appendChild(list);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("edit-form");
    if (!form) return;
    var box = document.getElementById("edit-check");
    var timer = null;
    var asked = 0;
    function check() {
      var mine = ++asked;
      fetch(form.dataset.checkUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (answer) { if (mine === asked) render(box, answer); })
        .catch(function () { box.textContent = "The check could not reach the server."; });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 400);
    });
  });
})();
