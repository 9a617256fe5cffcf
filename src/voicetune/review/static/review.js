// voicetune review: listen first, vote with the keyboard. No framework, no build step.
(function () {
  "use strict";
  var root = document.getElementById("review");
  var undoForm = document.getElementById("undo");
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "TEXTAREA" || tag === "SELECT" || tag === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "u" && undoForm) { event.preventDefault(); submitOnce(undoForm); }
  });
  if (!root) return;

  var mode = root.dataset.mode;
  var form = document.getElementById("vote");
  var started = performance.now();
  var played = { 1: false, 2: false };
  var plays = { 1: 0, 2: 0 };
  var buttons = form.querySelectorAll("button[name=verdict]");
  var sent = false;

  function status(slot, text) { document.getElementById("status" + slot).textContent = text; }
  function unlock() {
    if (mode === "read" || (played[1] && played[2])) {
      buttons.forEach(function (b) { b.disabled = false; });
      document.querySelectorAll(".text").forEach(function (t) { t.hidden = false; });
      root.classList.add("unlocked");
    }
  }
  function submitOnce(f, button) {
    if (sent) return;
    sent = true;
    if (f.requestSubmit) { f.requestSubmit(button); } else { if (button) button.click(); else f.submit(); }
  }
  function finished(slot) {
    played[slot] = true;
    status(slot, "played to the end");
    unlock();
    if (slot === 1 && !played[2]) play(2);  // autoplay the next response
  }
  function started_(slot) { plays[slot] += 1; status(slot, "playing"); }

  var audios = { 1: document.getElementById("audio1"), 2: document.getElementById("audio2") };
  function play(slot) {
    if (audios[slot]) {
      var promise = audios[slot].play();
      if (promise && promise.catch) promise.catch(function () { status(slot, "press space to play"); });
    } else {
      speak(slot);
    }
  }
  if (audios[1]) {
    [1, 2].forEach(function (slot) {
      audios[slot].addEventListener("play", function () { started_(slot); });
      audios[slot].addEventListener("ended", function () { finished(slot); });
      audios[slot].addEventListener("pause", function () { if (!audios[slot].ended) status(slot, "paused"); });
    });
  } else {
    // No stored audio: the browser's own speech synthesis reads the text (the same voice for both).
    document.querySelectorAll("button.speak").forEach(function (b) {
      b.addEventListener("click", function () { speak(Number(b.dataset.slot)); });
    });
  }
  function speak(slot) {
    if (!window.speechSynthesis) { finished(slot); return; }
    window.speechSynthesis.cancel();
    var utterance = new SpeechSynthesisUtterance(document.getElementById("text" + slot).textContent);
    utterance.rate = 1.0;
    utterance.onend = function () { finished(slot); };
    utterance.onerror = function () { finished(slot); };
    started_(slot);
    window.speechSynthesis.speak(utterance);
  }
  function current() {
    if (!played[1]) return 1;
    if (!played[2]) return 2;
    return audios[1] && !audios[1].paused ? 1 : (audios[2] && !audios[2].paused ? 2 : 1);
  }
  function togglePlay() {
    var slot = current();
    var other = slot === 1 ? 2 : 1;
    if (audios[other] && !audios[other].paused) audios[other].pause();
    if (audios[slot] && !audios[slot].paused) { audios[slot].pause(); } else { play(slot); }
  }
  form.addEventListener("submit", function () {
    form.elements.plays_1.value = plays[1];
    form.elements.plays_2.value = plays[2];
    form.elements.seconds.value = ((performance.now() - started) / 1000).toFixed(2);
  });
  var keys = { "1": "1", "ArrowLeft": "1", "2": "2", "ArrowRight": "2", "0": "0", "ArrowDown": "0" };
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "TEXTAREA" || tag === "SELECT" || tag === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key in keys) {
      event.preventDefault();
      var button = form.querySelector("button[name=verdict][value='" + keys[event.key] + "']");
      if (button && !button.disabled) submitOnce(form, button);
    } else if (event.key === " ") {
      event.preventDefault();
      togglePlay();
    }
  });
  unlock();
  play(1);
})();
