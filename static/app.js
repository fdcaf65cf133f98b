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
