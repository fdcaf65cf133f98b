// Tell the user when an htmx request fails (htmx swaps nothing for 4xx/5xx other than 409/422).
// A 400 that says what was wrong (a date out of range, say) carries it, percent-encoded, in
// X-Problem.
document.addEventListener("htmx:responseError", function (event) {
  var status = event.detail.xhr.status;
  var told = status === 400 ? event.detail.xhr.getResponseHeader("X-Problem") : null;
  var text = told ? decodeURIComponent(told)
    : status === 400 ? "Your session expired or the form was stale: reload the page."
    : status === 403 ? "Your role does not allow that."
    : status === 404 ? "That record no longer exists."
    : "Something went wrong (" + status + "). Please try again.";
  showProblem(text);
});
document.addEventListener("htmx:sendError", function () {
  showProblem("The server cannot be reached. Check the connection and try again.");
});
function showProblem(text) {
  var main = document.getElementById("main");
  var box = document.getElementById("htmx-problem");
  if (!box) {
    box = document.createElement("p");
    box.id = "htmx-problem";
    box.className = "flash error";
    box.setAttribute("role", "alert");
    main.insertBefore(box, main.firstChild);
  }
  box.textContent = text;
}

// A box marked data-follow (a live transcript) keeps its newest line in view as lines are
// added, unless the reader has scrolled up to read earlier ones; scrolling back to the end
// resumes following. htmx.onLoad also covers content htmx swaps in later.
var FOLLOW_SLACK_PX = 24; // still "at the end" despite rounding or a partly shown last line
function follow(box) {
  if (box.dataset.following) return;
  box.dataset.following = "yes";
  var atEnd = true;
  box.addEventListener("scroll", function () {
    atEnd = box.scrollHeight - box.scrollTop - box.clientHeight <= FOLLOW_SLACK_PX;
  }, { passive: true });
  new MutationObserver(function () {
    if (atEnd) box.scrollTop = box.scrollHeight;
  }).observe(box, { childList: true });
  box.scrollTop = box.scrollHeight;
}
htmx.onLoad(function (root) {
  if (root.matches && root.matches("[data-follow]")) follow(root);
  if (root.querySelectorAll) root.querySelectorAll("[data-follow]").forEach(follow);
});

// A button marked data-copy="<input id>" copies that input's text (the calendar feed link) and
// says so in the element its aria-describedby names. The clipboard API needs a secure context
// (https or localhost); elsewhere the text is selected and copied the older way.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  var field = document.getElementById(button.dataset.copy);
  var status = document.getElementById(button.getAttribute("aria-describedby") || "");
  if (!field) return;
  function tell(text) { if (status) status.textContent = text; }
  function fallback() {
    field.focus();
    field.select();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    tell(copied ? "Copied." : "Selected: press Ctrl+C (or Cmd+C) to copy.");
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(function () { tell("Copied."); }, fallback);
  } else {
    fallback();
  }
});

// A button marked data-print prints the page (the route sheet); print CSS hides the rest.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("[data-print]") : null;
  if (button) window.print();
});

// Time grids: drag a scheduled visit onto a free time to move it there. The drop posts the
// reschedule form (the engine checks it; a refusal shows the conflict and alternatives), as
// the visit's Move link does without a mouse. On the team board a visit stays in its column:
// a move keeps the nurse.
var draggedVisit = null;
function gridDropTarget(event) {
  var target = event.target.closest ? event.target.closest(".gr-free[data-at]") : null;
  if (!draggedVisit || !target) return null;
  var grid = target.closest(".tgrid");
  if (grid && grid.hasAttribute("data-one-column")
      && target.dataset.column !== draggedVisit.dataset.column) return null;
  return target;
}
document.addEventListener("dragstart", function (event) {
  draggedVisit = event.target.closest ? event.target.closest("[data-move]") : null;
  if (draggedVisit) {
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", draggedVisit.id);
  }
});
document.addEventListener("dragover", function (event) {
  if (gridDropTarget(event)) event.preventDefault();
});
document.addEventListener("drop", function (event) {
  var target = gridDropTarget(event);
  if (!target) return;
  event.preventDefault();
  var token = document.querySelector('meta[name="csrf-token"]');
  var form = document.createElement("form");
  form.method = "post";
  form.action = draggedVisit.dataset.move;
  [["csrf_token", token ? token.content : ""], ["start", target.dataset.at]].forEach(function (pair) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = pair[0];
    input.value = pair[1];
    form.appendChild(input);
  });
  document.body.appendChild(form);
  form.submit();
});
document.addEventListener("dragend", function () { draggedVisit = null; });
