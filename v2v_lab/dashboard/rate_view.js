// RateView's face in the browser: the prompt first and large, the question, two outputs that play,
// pause, seek and step frames together, the choice by buttons or keys, the source beside them or under
// a wipe. Every choice goes to Python as a message naming the pair it was made on, so a double click
// or a key held down never judges the next pair by accident. Every text is set as text (textContent),
// never as markup: prompts and names come from other people.

const KEYS = { ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right", ArrowDown: "tie", t: "tie",
               "0": "tie", s: "skip" };
const CHOICES = [["left", "A is better", "←"], ["tie", "Tie", "↓"], ["right", "B is better", "→"], ["skip", "Skip", "s"]];
const SOURCE_MODES = ["off", "side by side", "wipe"];

function el_(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function video_(cls) {
  const v = el_("video", `v2v-rate-video ${cls}`);
  v.muted = true; v.loop = true; v.playsInline = true; v.preload = "auto";
  return v;
}

function withKey(button, text, key) {
  button.append(el_("span", "v2v-rate-button-text", text), el_("kbd", "", key));
  return button;
}

function clock(seconds) {
  if (!Number.isFinite(seconds)) return "0:00.0";
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - m * 60).toFixed(1).padStart(4, "0")}`;
}

function render({ model, el }) {
  el.classList.add("v2v-rate");
  const prompt = el_("div", "v2v-rate-prompt");
  const question = el_("div", "v2v-rate-question");
  const stage = el_("div", "v2v-rate-stage");
  // Each side: the output over its own copy of the source (seen only in wipe mode).
  const sides = ["left", "right"].map((side) => {
    const box = el_("div", "v2v-rate-side");
    const frame = el_("div", "v2v-rate-frame");
    const under = video_("v2v-rate-under");
    const video = video_(`v2v-rate-${side}`);
    frame.append(under, video, el_("div", "v2v-rate-wipe-line"));
    box.append(el_("div", "v2v-rate-label", side === "left" ? "A" : "B"), frame);
    stage.append(box);
    return { video, under, frame };
  });
  const [left, right] = sides.map((s) => s.video);
  const sourceBox = el_("div", "v2v-rate-side v2v-rate-source");
  const source = video_("v2v-rate-source-video");
  sourceBox.append(el_("div", "v2v-rate-label", "source"), source);
  stage.append(sourceBox);

  const transport = el_("div", "v2v-rate-transport");
  const back = withKey(el_("button", "v2v-rate-step v2v-rate-back"), "◀ frame", ",");
  const play = el_("button", "v2v-rate-play");
  const forward = withKey(el_("button", "v2v-rate-step v2v-rate-forward"), "frame ▶", ".");
  const seek = el_("input", "v2v-rate-seek");
  seek.type = "range"; seek.min = "0"; seek.max = "1000"; seek.value = "0";
  const time = el_("span", "v2v-rate-time", "0:00.0 / 0:00.0");
  const sourceMode = el_("button", "v2v-rate-show-source");
  const wipe = el_("input", "v2v-rate-wipe");
  wipe.type = "range"; wipe.min = "0"; wipe.max = "100"; wipe.value = "50"; wipe.title = "wipe: source on the left";
  transport.append(back, play, forward, seek, time, sourceMode, wipe);

  const choices = el_("div", "v2v-rate-choices");
  const buttons = {};
  for (const [choice, text, key] of CHOICES) {
    const b = withKey(el_("button", `v2v-rate-choice v2v-rate-${choice}-button`), text, key);
    b.dataset.choice = choice;
    b.addEventListener("click", () => choose(choice));
    choices.append(b);
    buttons[choice] = b;
  }
  const progress = el_("div", "v2v-rate-progress");
  const finished = el_("div", "v2v-rate-finished");
  el.append(prompt, question, stage, transport, choices, progress, finished);

  let busy = false;
  let mode = model.get("show_source") ? 1 : 0;  // index in SOURCE_MODES
  const playing = () => !left.paused;
  const videos = () => [left, right, ...(mode === 1 ? [source] : []),
                        ...(mode === 2 ? sides.map((s) => s.under) : [])];

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
    time.textContent = `${clock(left.currentTime)} / ${clock(left.duration)}`;
  }
  left.addEventListener("timeupdate", follow);
  left.addEventListener("seeked", follow);
  left.addEventListener("loadedmetadata", follow);
  function setPlaying(on) {
    for (const v of videos()) { if (on) v.play().catch(() => {}); else v.pause(); }
    play.replaceChildren();
    withKey(play, on ? "❚❚ pause" : "▶ play", "space");
  }
  const togglePlay = () => setPlaying(!playing());
  function seekTo(t) {
    const end = left.duration || 0;
    const to = Math.min(Math.max(t, 0), Math.max(end - 0.001, 0));
    for (const v of videos()) v.currentTime = to;
    follow();
  }
  function step(frames) {
    setPlaying(false);
    seekTo(left.currentTime + frames / (model.get("fps") || 24));
  }
  play.addEventListener("click", togglePlay);
  back.addEventListener("click", () => step(-1));
  forward.addEventListener("click", () => step(1));
  seek.addEventListener("input", () => seekTo(left.duration ? (Number(seek.value) / 1000) * left.duration : 0));

  function setWipe(percent) {
    wipe.value = String(percent);
    for (const s of sides) s.frame.style.setProperty("--wipe", `${percent}%`);
  }
  wipe.addEventListener("input", () => setWipe(Number(wipe.value)));
  for (const s of sides) {
    s.frame.addEventListener("pointermove", (event) => {
      if (mode !== 2) return;
      const box = s.frame.getBoundingClientRect();
      setWipe(Math.round(Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1) * 100));
    });
  }
  function cycleSource() {
    mode = (mode + 1) % SOURCE_MODES.length;
    model.set("show_source", mode !== 0);
    model.save_changes();
    show();
    for (const v of videos()) if (v !== left) v.currentTime = left.currentTime;
    if (playing()) setPlaying(true);
  }
  sourceMode.addEventListener("click", cycleSource);

  function onKey(event) {
    if (!el.isConnected || event.target.closest?.("input[type=text], textarea")) return;
    const actions = { " ": togglePlay, v: cycleSource, ",": () => step(-1), ".": () => step(1) };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); return; }
    const choice = KEYS[event.key];
    if (choice) { event.preventDefault(); choose(choice); }
  }
  document.addEventListener("keydown", onKey, true);  // capture: before any host (Lumino, Voila) handles it

  // A video comes by address (the kernel's media server) or, inline mode, as bytes made a blob.
  const blobs = new Map();
  function setVideo(video, name) {
    if (blobs.has(video)) { URL.revokeObjectURL(blobs.get(video)); blobs.delete(video); }
    let url = model.get(`${name}_url`);
    const bytes = model.get(`${name}_video`);
    if (!url && bytes && bytes.byteLength) {
      url = URL.createObjectURL(new Blob([bytes], { type: "video/mp4" }));
      blobs.set(video, url);
    }
    if (url) { if (video.getAttribute("src") !== url) video.src = url; } else video.removeAttribute("src");
  }
  function setSource() {
    for (const v of [source, ...sides.map((s) => s.under)]) setVideo(v, "source");
    for (const v of videos()) if (v !== left) v.currentTime = left.currentTime;
  }
  function load() {
    setVideo(left, "left");
    setVideo(right, "right");
    setSource();
    setPlaying(false);
    seek.value = "0";
    time.textContent = "0:00.0 / 0:00.0";
  }
  function show() {
    prompt.textContent = model.get("prompt");
    prompt.style.display = model.get("prompt") ? "" : "none";
    question.textContent = model.get("question");
    progress.textContent = model.get("progress");
    sourceMode.replaceChildren();
    withKey(sourceMode, `source: ${SOURCE_MODES[mode]}`, "v");
    sourceBox.style.display = mode === 1 ? "" : "none";
    el.classList.toggle("v2v-rate-wiping", mode === 2);
    wipe.style.display = mode === 2 ? "" : "none";
    const done = model.get("finished");
    finished.textContent = done ? "All pairs rated. Thank you." : "";
    stage.style.display = transport.style.display = choices.style.display = done ? "none" : "";
    for (const b of Object.values(buttons)) b.disabled = done || busy;
  }
  // Only a new pair ends the wait after a choice: then the choice keys and buttons work again.
  model.on("change:pair_id", () => { busy = false; load(); show(); });
  model.on("change:source_url", setSource);
  model.on("change:source_video", setSource);
  for (const name of ["question", "prompt", "progress", "finished"]) model.on(`change:${name}`, show);
  setWipe(50);
  load();
  show();
  return () => {
    document.removeEventListener("keydown", onKey, true);
    for (const url of blobs.values()) URL.revokeObjectURL(url);
  };
}

export default { render };
