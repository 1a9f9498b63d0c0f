// The review page's behaviour: selection, keyboard shortcuts, the similarity slider, and plan -> confirm -> apply.
// Every action first asks the server for its plan (POST /review/plan) and shows it; only "Apply" sends that same
// plan back (POST /review/apply), and the server refuses it if the gallery changed in between.
"use strict";
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const planBox = $("#plan");
  const planText = $("#plan-summary");
  const message = $("#message");
  let pending = null;

  function say(text, kind = "info") {
    message.textContent = text;
    message.className = kind;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({detail: response.statusText}));
    if (!response.ok) throw new Error(data.detail || response.statusText);
    return data;
  }

  async function propose(request) {
    try {
      pending = await post("/review/plan", request);
      planText.textContent = pending.summary;
      planBox.hidden = false;
      $("#apply").focus();
    } catch (error) {
      pending = null;
      planBox.hidden = true;
      say(error.message, "error");
    }
  }

  async function apply() {
    if (!pending) return;
    try {
      const done = await post("/review/apply", pending);
      sessionStorage.setItem("trackid-review-message", `Applied: ${done.summary} (correction #${done.correction_id})`);
      location.reload();
    } catch (error) {
      say(error.message, "error");
    } finally {
      pending = null;
      planBox.hidden = true;
    }
  }

  function cancel() {
    pending = null;
    planBox.hidden = true;
    say("Nothing changed.");
  }

  const cards = () => $$(".identity");
  const focused = () => document.activeElement && document.activeElement.closest(".identity");

  function merge() {
    const picked = $$(".pick-identity:checked").map((box) => box.closest(".identity"));
    if (picked.length !== 2) return say("Select exactly two identities to merge (x or their checkboxes).", "error");
    picked.sort((a, b) => (b.dataset.sightings - a.dataset.sightings) || (a.dataset.id - b.dataset.id));
    propose({action: "merge", identity_id: +picked[0].dataset.id, other_identity_id: +picked[1].dataset.id});
  }

  function split() {
    const picked = $$(".pick-sighting:checked");
    const owners = new Set(picked.map((box) => box.closest(".identity").dataset.id));
    if (!picked.length || owners.size !== 1) return say("Select sightings of one identity to split off.", "error");
    propose({action: "split", identity_id: +[...owners][0], sighting_ids: picked.map((box) => +box.value)});
  }

  function relabel(card) {
    if (!card) return say("Focus an identity first (j / k).", "error");
    propose({action: "relabel", identity_id: +card.dataset.id, label: $(".label-input", card).value});
  }

  function showCandidates() {
    const slider = $("#min-similarity");
    const threshold = +slider.value;
    $("#min-similarity-value").textContent = threshold.toFixed(2);
    let shown = 0;
    for (const item of $$(".candidate")) {
      item.hidden = +item.dataset.similarity < threshold;
      shown += item.hidden ? 0 : 1;
    }
    $("#candidates-shown").textContent = `${shown} candidate pair(s) at or above ${threshold.toFixed(2)}`;
  }

  function move(step) {
    const all = cards();
    const at = all.indexOf(focused());
    const next = all[Math.min(all.length - 1, Math.max(0, at + step))];
    if (next) next.focus();
  }

  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input[type=text]")) {
      if (event.key === "Enter") { event.preventDefault(); relabel(event.target.closest(".identity")); }
      return;
    }
    const keys = {
      j: () => move(1), k: () => move(-1), m: merge, s: split, u: () => propose({action: "undo"}),
      r: () => { const card = focused(); if (card) $(".label-input", card).focus(); },
      x: () => { const card = focused(); if (card) $(".pick-identity", card).click(); },
      Enter: () => apply(), Escape: cancel,
    };
    const handler = keys[event.key];
    if (handler && !event.ctrlKey && !event.metaKey && !event.altKey) { event.preventDefault(); handler(); }
  });
  $("#merge").addEventListener("click", merge);
  $("#split").addEventListener("click", split);
  $("#undo").addEventListener("click", () => propose({action: "undo"}));
  $("#apply").addEventListener("click", apply);
  $("#cancel").addEventListener("click", cancel);
  for (const button of $$(".relabel")) button.addEventListener("click", () => relabel(button.closest(".identity")));
  $("#min-similarity").addEventListener("input", showCandidates);
  showCandidates();
  const flash = sessionStorage.getItem("trackid-review-message");
  if (flash) { say(flash, "done"); sessionStorage.removeItem("trackid-review-message"); }
})();
