// RateView's face in the browser: two outputs that play, pause and seek together, the choice by
// buttons or keys, the source on demand. Every choice goes to Python as a message naming the pair it
// was made on, so a double click or a key held down never judges the next pair by accident.

const KEYS = { ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right", ArrowDown: "tie", t: "tie",
               "0": "tie", s: "skip" };

function blobUrl(view) {
  if (!view || view.byteLength === 0) return "";
  return URL.createObjectURL(new Blob([view], { type: "video/mp4" }));
}

function el_(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function render({ model, el }) {
  el.classList.add("v2v-rate");
  const question = el_("div", "v2v-rate-question");
  const prompt = el_("div", "v2v-rate-prompt");
  const progress = el_("div", "v2v-rate-progress");
  const stage = el_("div", "v2v-rate-stage");
  const sides = ["left", "right"].map((side) => {
    const box = el_("div", "v2v-rate-side");
    const label = el_("div", "v2v-rate-label", side === "left" ? "A (left)" : "B (right)");
    const video = el_("video", `v2v-rate-video v2v-rate-${side}`);
    video.muted = true; video.loop = true; video.playsInline = true; video.preload = "auto";
    box.append(label, video);
    stage.append(box);
    return video;
  });
  const [left, right] = sides;
  const sourceBox = el_("div", "v2v-rate-source");
  const source = el_("video", "v2v-rate-video v2v-rate-source-video");
  source.muted = true; source.loop = true; source.playsInline = true;
  sourceBox.append(el_("div", "v2v-rate-label", "source"), source);
  sourceBox.style.display = "none";

  const transport = el_("div", "v2v-rate-transport");
  const play = el_("button", "v2v-rate-play", "play ␣");
  const seek = el_("input", "v2v-rate-seek");
  seek.type = "range"; seek.min = "0"; seek.max = "1000"; seek.value = "0";
  const showSource = el_("button", "v2v-rate-show-source", "source (v)");
  transport.append(play, seek, showSource);

  const choices = el_("div", "v2v-rate-choices");
  const buttons = {};
  for (const [choice, text] of [["left", "◀ A is better (←)"], ["tie", "tie (↓)"], ["right", "B is better (→) ▶"],
                                ["skip", "skip (s)"]]) {
    const b = el_("button", `v2v-rate-choice v2v-rate-${choice}-button`, text);
    b.dataset.choice = choice;
    b.addEventListener("click", () => choose(choice));
    choices.append(b);
    buttons[choice] = b;
  }
  const finished = el_("div", "v2v-rate-finished");
  el.append(question, prompt, stage, transport, sourceBox, choices, progress, finished);

  let busy = false;
  const videos = () => [left, right, ...(sourceBox.style.display === "none" ? [] : [source])];

  function choose(choice) {
    if (busy || model.get("finished")) return;
    busy = true;
    for (const b of Object.values(buttons)) b.disabled = true;
    model.send({ choice, pair: model.get("pair_id") });
  }

  // One clock: the left video leads; the others follow it within a tenth of a second.
  function follow() {
    for (const v of videos()) {
      if (v !== left && Math.abs(v.currentTime - left.currentTime) > 0.1) v.currentTime = left.currentTime;
    }
    if (left.duration) seek.value = String(Math.round((left.currentTime / left.duration) * 1000));
  }
  left.addEventListener("timeupdate", follow);
  function togglePlay() {
    if (left.paused) { for (const v of videos()) v.play().catch(() => {}); play.textContent = "pause ␣"; }
    else { for (const v of videos()) v.pause(); play.textContent = "play ␣"; }
  }
  play.addEventListener("click", togglePlay);
  seek.addEventListener("input", () => {
    const t = left.duration ? (Number(seek.value) / 1000) * left.duration : 0;
    for (const v of videos()) v.currentTime = t;
  });
  function toggleSource() {
    model.set("show_source", !model.get("show_source"));
    model.save_changes();
  }
  showSource.addEventListener("click", toggleSource);

  function onKey(event) {
    if (!el.isConnected || event.target.closest?.("input[type=text], textarea")) return;
    if (event.key === " ") { event.preventDefault(); togglePlay(); return; }
    if (event.key === "v") { toggleSource(); return; }
    const choice = KEYS[event.key];
    if (choice) { event.preventDefault(); choose(choice); }
  }
  document.addEventListener("keydown", onKey, true);  // capture: before any host (Lumino, Voila) handles it

  const urls = new Map();
  function setVideo(video, name) {
    if (urls.has(video)) URL.revokeObjectURL(urls.get(video));
    const url = blobUrl(model.get(name));
    urls.set(video, url);
    if (url) video.src = url; else video.removeAttribute("src");
  }
  function load() {
    setVideo(left, "left_video");
    setVideo(right, "right_video");
    setVideo(source, "source_video");
    play.textContent = "play ␣";
    seek.value = "0";
  }
  function show() {
    question.textContent = model.get("question");
    prompt.textContent = model.get("prompt") ? `prompt: ${model.get("prompt")}` : "";
    progress.textContent = model.get("progress");
    sourceBox.style.display = model.get("show_source") ? "" : "none";
    const done = model.get("finished");
    finished.textContent = done ? "All pairs rated. Thank you." : "";
    stage.style.display = transport.style.display = choices.style.display = done ? "none" : "";
    for (const b of Object.values(buttons)) b.disabled = done || busy;
  }
  // Only a new pair ends the wait after a choice: then the choice keys and buttons work again.
  model.on("change:pair_id", () => { busy = false; load(); show(); });
  model.on("change:source_video", () => { setVideo(source, "source_video"); source.currentTime = left.currentTime; });
  for (const name of ["question", "prompt", "progress", "show_source", "finished"]) model.on(`change:${name}`, show);
  load();
  show();
  return () => {
    document.removeEventListener("keydown", onKey, true);
    for (const url of urls.values()) if (url) URL.revokeObjectURL(url);
  };
}

export default { render };
