/* The blueprint's flow diagram, redrawn while its steps are edited: 400 ms after the last
   change the steps are posted to the admin's diagram URL and the SVG it answers is swapped
   in. Until the steps can be drawn (half-typed JSON) the last diagram stays, with a note. */
(function () {
  "use strict";

  var DELAY_MS = 400;

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector(".sm-diagram-box[data-diagram-url]");
    var steps = document.querySelector("textarea[name=steps]");
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!box || !steps || !token) return;

    var note = document.createElement("p");
    note.className = "sm-diagram-note";
    box.parentNode.insertBefore(note, box);
    var timer = null;
    var asked = 0;

    function redraw() {
      var number = ++asked;
      var form = new FormData();
      form.append("csrfmiddlewaretoken", token.value);
      form.append("steps", steps.value);
      fetch(box.dataset.diagramUrl, { method: "POST", body: form, credentials: "same-origin" })
        .then(function (response) {
          return response.json();
        })
        .then(function (answer) {
          if (number !== asked) return; /* a newer edit is on its way */
          if (answer.svg) {
            box.innerHTML = answer.svg;
            note.textContent = "";
          } else {
            note.textContent = "Diagram not redrawn: " + (answer.error || "no answer");
          }
        })
        .catch(function () {
          if (number === asked) note.textContent = "Diagram not redrawn: the server did not answer";
        });
    }

    steps.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(redraw, DELAY_MS);
    });
    redraw();
  });
})();
