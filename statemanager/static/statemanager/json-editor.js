/* The JSON editor of API calls and blueprints.

   Every textarea.sm-json-editor becomes a CodeMirror editor with line numbers and JSON
   highlighting. The textarea stays what the form posts: it is kept equal to the editor on
   every change (and is the editor itself when JavaScript is off). Errors are marked at
   their line: the server's "<place>: <reason>" errors shown at the field, and JSON syntax
   errors while typing. Read-only JSON (pre.sm-json-view) is shown the same way. */
(function () {
  "use strict";

  var MODE = { name: "javascript", json: true };
  var GUTTER = "sm-json-gutter";
  var STRING = /"(?:[^"\\\n]|\\.)*"/y;
  var LITERAL = /-?[0-9][0-9.eE+-]*|true|false|null/y;

  /* Where each place of a JSON text starts, as an offset: "" for the whole value, "[2]"
     for an item, "[2].on_failed" for a key (where the key starts). Stops at a syntax
     error, keeping the places found before it; `stop` is where it stopped. */
  function scan(text) {
    var offsets = {};
    var at = 0;

    function space() {
      while (/\s/.test(text.charAt(at))) at++;
    }
    function token(pattern) {
      pattern.lastIndex = at;
      var found = pattern.exec(text);
      if (!found) throw new SyntaxError("unexpected text at " + at);
      at = pattern.lastIndex;
      return found[0];
    }
    function items(close, item) {
      at++;
      space();
      if (text.charAt(at) === close) return at++;
      for (var index = 0; ; index++) {
        space();
        item(index);
        space();
        if (text.charAt(at) !== ",") return token(close === "}" ? /\}/y : /\]/y);
        at++;
      }
    }
    function value(place) {
      space();
      if (!(place in offsets)) offsets[place] = at;
      var first = text.charAt(at);
      if (first === "{") {
        items("}", function () {
          var start = at;
          var key = JSON.parse(token(STRING));
          var child = place ? place + "." + key : key;
          offsets[child] = start;
          space();
          token(/:/y);
          value(child);
        });
      } else if (first === "[") {
        items("]", function (index) {
          value(place + "[" + index + "]");
        });
      } else {
        token(first === '"' ? STRING : LITERAL);
      }
    }

    try {
      value("");
    } catch (error) {
      /* a half-typed text: the places before the error are still right */
    }
    return { places: offsets, stop: at };
  }

  /* The editor line of an error's place, e.g. 'steps[2] (id "charge").call' in the editor
     of the field "steps"; the nearest enclosing place that exists when the place does not
     (a missing key is marked at its object). */
  function lineOfPlace(editor, field, place) {
    place = place.replace(/ \(id [^)]*\)/g, "");
    if (place === field) place = "";
    else if (place.indexOf(field + ".") === 0 || place.indexOf(field + "[") === 0) {
      place = place.slice(field.length).replace(/^\./, "");
    }
    var offsets = scan(editor.getValue()).places;
    while (place && !(place in offsets)) {
      var outer = place.replace(/(\[\d+\]|\.?[^.[]+)$/, "");
      place = outer === place ? "" : outer;
    }
    return place in offsets ? editor.posFromIndex(offsets[place]).line : null;
  }

  /* A mark at a line: a gutter dot with the message on hover, the line tinted, and the
     message under the line. Returns what `unmark` takes away. */
  function mark(editor, line, message, kind) {
    var dot = document.createElement("span");
    dot.className = "sm-json-dot sm-json-dot-" + kind;
    dot.textContent = "●";
    dot.title = message;
    var note = document.createElement("div");
    note.className = "sm-json-note sm-json-note-" + kind;
    note.textContent = message;
    var handle = editor.getLineHandle(line);
    editor.setGutterMarker(handle, GUTTER, dot);
    editor.addLineClass(handle, "background", "sm-json-line-" + kind);
    return { handle: handle, dot: dot, kind: kind, widget: editor.addLineWidget(handle, note) };
  }

  function unmark(editor, marked) {
    var markers = editor.lineInfo(marked.handle);
    if (markers && markers.gutterMarkers && markers.gutterMarkers[GUTTER] === marked.dot) {
      editor.setGutterMarker(marked.handle, GUTTER, null);
    }
    editor.removeLineClass(marked.handle, "background", "sm-json-line-" + marked.kind);
    marked.widget.clear();
  }

  /* JSON.parse's complaint about the text and where it is, or null when the text is JSON
     (or empty, which an optional field allows). */
  function syntaxError(text) {
    if (!text.trim()) return null;
    try {
      JSON.parse(text);
      return null;
    } catch (error) {
      var lineColumn = /line (\d+) column (\d+)/.exec(error.message);
      var position = /position (\d+)/.exec(error.message);
      var reason = error.message
        .replace(/^JSON\.parse: /, "")
        .replace(/ (in JSON )?at (position|line) .*$/, "")
        .replace(/, (\.\.\.)?"[\s\S]*$/, "")
        .replace(/^Unexpected end of JSON input$/, "the JSON ends too early");
      return {
        line: lineColumn ? Number(lineColumn[1]) - 1 : null,
        offset: position ? Number(position[1]) : scan(text).stop,
        message: "JSON syntax: " + reason,
      };
    }
  }

  function jumpTo(editor, line) {
    editor.focus();
    editor.setCursor({ line: line, ch: 0 });
    editor.scrollIntoView({ line: line, ch: 0 }, 80);
  }

  /* The server's errors at this field, each marked at its line and given a link to it. */
  function markServerErrors(editor, textarea) {
    var row = textarea.closest(".form-row") || textarea.parentNode;
    row.querySelectorAll(".errorlist li").forEach(function (item) {
      var text = item.textContent;
      var split = text.indexOf(": ");
      if (split < 0) return;
      var line = lineOfPlace(editor, textarea.name, text.slice(0, split));
      if (line === null) return;
      mark(editor, line, text, "error");
      var link = document.createElement("a");
      link.href = "#";
      link.className = "sm-json-line-link";
      link.textContent = "line " + (line + 1);
      link.addEventListener("click", function (event) {
        event.preventDefault();
        jumpTo(editor, line);
      });
      item.appendChild(document.createTextNode(" "));
      item.appendChild(link);
    });
  }

  function editorFor(textarea) {
    var editor = CodeMirror(
      function (element) {
        /* styled before CodeMirror measures it */
        element.classList.add("sm-json-cm", "sm-json-cm-" + textarea.name);
        textarea.parentNode.insertBefore(element, textarea.nextSibling);
      },
      {
        value: textarea.value,
        mode: MODE,
        lineNumbers: true,
        lineWrapping: true,
        matchBrackets: true,
        tabSize: 2,
        indentUnit: 2,
        viewportMargin: Infinity,
        gutters: ["CodeMirror-linenumbers", GUTTER],
      }
    );
    textarea.style.display = "none";

    var status = document.createElement("div");
    status.className = "sm-json-status";
    editor.getWrapperElement().insertAdjacentElement("afterend", status);

    var syntaxMark = null;
    function checkSyntax() {
      if (syntaxMark) unmark(editor, syntaxMark);
      syntaxMark = null;
      status.textContent = "";
      var error = syntaxError(editor.getValue());
      if (!error) return;
      var line = error.line !== null ? error.line : editor.posFromIndex(error.offset).line;
      syntaxMark = mark(editor, line, error.message, "syntax");
      status.textContent = error.message + " (line " + (line + 1) + ")";
    }

    var timer = null;
    editor.on("change", function () {
      textarea.value = editor.getValue();
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
      clearTimeout(timer);
      timer = setTimeout(checkSyntax, 300);
    });
    markServerErrors(editor, textarea);
    checkSyntax();
    return editor;
  }

  function viewFor(pre) {
    CodeMirror(
      function (element) {
        element.classList.add("sm-json-cm", "sm-json-cm-view");
        pre.parentNode.replaceChild(element, pre);
      },
      {
        value: pre.textContent,
        mode: MODE,
        readOnly: true,
        lineNumbers: true,
        lineWrapping: true,
        viewportMargin: Infinity,
      }
    );
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof CodeMirror === "undefined") return;
    document.querySelectorAll("textarea.sm-json-editor").forEach(editorFor);
    document.querySelectorAll("pre.sm-json-view").forEach(viewFor);
  });
})();
