/* The lobby page's client: the room protocol (docs: /work/shared/protocol.md)
 * over socket.io-client 4 with its default settings (long-polling first, then the
 * upgrade to WebSocket), namespace /lobby.
 *
 * Why it is built this way:
 * - Which room we sit in is read from `updaterooms` (the server's truth), not kept
 *   as a flag of our own: after a reconnect, a takeover or a disbanded room the list
 *   is right and a flag would be stale. Acks only bridge the moment between "the
 *   server said yes" and the list that shows it (the protocol does not order them).
 * - Every command asks for an ack with a timeout, so each error can be shown next
 *   to the button that caused it; `rejected` is still handled for completeness.
 * - Commands are refused locally while disconnected: socket.io-client would buffer
 *   them and send them before our re-`join_lobby`, where they would fail.
 * - Text from the server goes into the page with textContent only, never as HTML.
 */
"use strict";

(() => {
  const NAMESPACE = "/lobby";
  const ACK_TIMEOUT_MS = 10000;
  const USER_ID_KEY = "roomactors.userId";
  const PROFILE_KEY = "roomactors.profile";
  const MAX_CARDS = 1000;

  const $ = (id) => document.getElementById(id);
  const el = {
    connection: document.querySelector("[data-testid=connection-state]"),
    connectionText: document.querySelector(".connection-text"),
    notice: document.querySelector("[data-testid=notice]"),
    noticeText: document.querySelector(".notice-text"),
    noticeDismiss: document.querySelector("[data-testid=notice-dismiss]"),
    views: {
      signin: $("signin-view"),
      lobby: $("lobby-view"),
      room: $("room-view"),
    },
    headings: {
      signin: $("signin-heading"),
      lobby: $("lobby-heading"),
      room: $("room-heading"),
    },
    signinForm: $("signin-form"),
    signinName: $("signin-name"),
    signinError: $("signin-error"),
    whoami: document.querySelector("[data-testid=whoami]"),
    signout: $("signout-button"),
    signoutError: $("signout-error"),
    roomList: $("room-list"),
    roomsEmpty: document.querySelector("[data-testid=rooms-empty]"),
    roomCount: document.querySelector("[data-testid=room-count]"),
    createForm: $("create-form"),
    createName: $("create-name"),
    deckName: $("deck-name"),
    generateFields: $("generate-fields"),
    pasteFields: $("paste-fields"),
    genCount: $("gen-count"),
    genOp: $("gen-op"),
    genMax: $("gen-max"),
    pasteCards: $("paste-cards"),
    createError: $("create-error"),
    roomTitle: $("room-heading"),
    roomHost: document.querySelector("[data-testid=room-host]"),
    roomDeck: document.querySelector("[data-testid=room-deck]"),
    roomCapacity: document.querySelector("[data-testid=room-capacity]"),
    playerList: document.querySelector("[data-testid=player-list]"),
    playersEmpty: document.querySelector("[data-testid=players-empty]"),
    roomHint: document.querySelector("[data-testid=room-hint]"),
    leave: $("leave-button"),
    leaveError: $("leave-error"),
  };

  const state = {
    userId: tabUserId(),
    me: null, // {id, username, auth_level} once join_lobby succeeded
    profile: loadProfile(), // what the user signed in with; re-sent after a reconnect
    rooms: [],
    pendingRoom: null, // a create/join ack's room, until an updaterooms arrives
    leftRoomId: null, // a room we left (ack or roomclosed), until an updaterooms arrives
    view: null,
    droppedFrom: null, // name of the room we sat in when the connection dropped
  };

  /* ---------- identity ---------- */

  function randomId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return "u-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // One user id per tab (sessionStorage), so a reload keeps the user and a second
  // tab is a second player. Falls back to memory where storage is blocked.
  function tabUserId() {
    try {
      let id = sessionStorage.getItem(USER_ID_KEY);
      if (!id) {
        id = randomId();
        sessionStorage.setItem(USER_ID_KEY, id);
      }
      return id;
    } catch {
      return randomId();
    }
  }

  function loadProfile() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(PROFILE_KEY) || "null");
      if (saved && typeof saved.username === "string") return saved;
    } catch {
      /* no storage: start signed out */
    }
    return null;
  }

  function saveProfile(profile) {
    try {
      if (profile) sessionStorage.setItem(PROFILE_KEY, JSON.stringify(profile));
      else sessionStorage.removeItem(PROFILE_KEY);
    } catch {
      /* no storage: nothing to remember */
    }
  }

  const sameId = (a, b) => a !== undefined && a !== null && String(a) === String(b);

  function displayName(user) {
    if (!user) return "someone";
    if (typeof user.username === "string" && user.username.trim()) return user.username;
    return `Player ${String(user.id).slice(0, 8)}`;
  }

  /* ---------- messages in words ---------- */

  const ERROR_TEXT = {
    invalid_payload: "The server did not accept that",
    not_in_lobby: "You are not signed in any more. Please sign in again.",
    already_in_room: "You are already in a room. Leave it first.",
    room_not_found: "That room does not exist any more.",
    room_full: "That room is full.",
    not_in_room: "You are not in that room.",
    forbidden: "This tab is not allowed to act for that user.",
    identity_mismatch: "This connection is signed in as someone else.",
    too_many_rooms: "The server has too many rooms right now. Try again later.",
    rate_limited: "Too many requests. Wait a moment and try again.",
    internal: "Something went wrong on the server. Try again.",
  };

  const CLOSED_TEXT = {
    host_left: "The host closed the room.",
    host_disconnected: "The host lost their connection, so the room was closed.",
    shutdown: "The server is shutting down, so the room was closed.",
    crashed: "The room stopped because of a server error.",
  };

  function describeError(error) {
    const code = error && typeof error.code === "string" ? error.code : "internal";
    const message = error && typeof error.message === "string" ? error.message : "";
    const words = ERROR_TEXT[code];
    if (code === "invalid_payload") return message ? `${words}: ${message}` : `${words}.`;
    return words || message || `The server refused (${code}).`;
  }

  /* ---------- small DOM helpers ---------- */

  function showError(node, text, code) {
    node.textContent = text;
    node.dataset.code = code || "";
    node.hidden = false;
  }

  function clearError(node) {
    node.textContent = "";
    node.dataset.code = "";
    node.hidden = true;
  }

  let noticeAction = null;
  const noticeActionButton = document.createElement("button");
  noticeActionButton.type = "button";
  noticeActionButton.className = "primary";
  noticeActionButton.dataset.testid = "notice-action";
  noticeActionButton.hidden = true;
  el.noticeDismiss.before(noticeActionButton);
  noticeActionButton.addEventListener("click", () => {
    const action = noticeAction;
    hideNotice();
    if (action) action.run();
  });
  el.noticeDismiss.addEventListener("click", () => {
    hideNotice();
    focusView();
  });

  function showNotice(text, kind, action) {
    el.noticeText.textContent = text;
    el.notice.dataset.kind = kind || "info";
    el.notice.dataset.reason = "";
    noticeAction = action || null;
    noticeActionButton.hidden = !action;
    noticeActionButton.textContent = action ? action.label : "";
    el.notice.hidden = false;
  }

  function hideNotice() {
    el.notice.hidden = true;
    el.notice.dataset.kind = "";
    el.notice.dataset.reason = "";
    noticeAction = null;
    noticeActionButton.hidden = true;
  }

  /* ---------- the connection ---------- */

  // The forms never submit natively: without the client (or before it is
  // ready) a native submit would reload the page with the form's data in the URL.
  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", (event) => event.preventDefault());
  }

  if (typeof window.io !== "function") {
    setConnection("disconnected", "Could not load the Socket.IO client");
    showNotice(
      "The page could not load its Socket.IO client, so it cannot reach the game server. " +
        "Please tell whoever runs this server: it can serve the client itself " +
        "(roomserver --client-js-path), which works without internet.",
      "error",
    );
    render();
    return;
  }

  // Default settings on purpose: polling first, then the upgrade to WebSocket.
  const socket = window.io(NAMESPACE);
  window.roomactorsLobby = { socket, state }; // for debugging and the browser tests

  function transportName() {
    const engine = socket.io.engine;
    return engine && engine.transport ? engine.transport.name : "";
  }

  function setConnection(kind, detail) {
    el.connection.dataset.state = kind;
    const transport = kind === "connected" ? transportName() : "";
    el.connection.dataset.transport = transport;
    const label = {
      connecting: "Connecting…",
      connected: transport === "websocket" ? "Connected (WebSocket)" : "Connected",
      reconnecting: "Reconnecting…",
      disconnected: "Disconnected",
    }[kind];
    el.connectionText.textContent = detail ? `${label} — ${detail}` : label;
    document.body.dataset.connection = kind;
  }

  // Each (re)connection opens a new Engine.IO socket; follow its upgrade.
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    engine.on("upgrade", () => {
      if (socket.connected) setConnection("connected");
    });
  });
  socket.io.on("reconnect_attempt", () => setConnection("reconnecting"));
  socket.io.on("reconnect_failed", () => setConnection("disconnected", "gave up retrying"));

  let replaced = false;

  socket.on("connect", () => {
    replaced = false;
    setConnection("connected");
    if (noticeAction && noticeAction.reconnect) hideNotice();
    // Back after a drop: the server counted it as leaving, so join again as the same user.
    if (state.profile) joinLobby(state.profile, { fromForm: false });
  });

  socket.on("disconnect", (reason) => {
    const room = state.me ? currentRoom() : null;
    state.droppedFrom = room ? String(room.name) : null;
    if (socket.active) {
      setConnection("reconnecting");
      return;
    }
    setConnection("disconnected");
    if (replaced || reason === "io client disconnect") return;
    showNotice("The server closed the connection.", "error", {
      label: "Reconnect",
      reconnect: true,
      run: () => socket.connect(),
    });
  });

  socket.on("connect_error", (err) => {
    setConnection(socket.active ? "reconnecting" : "disconnected", socket.active ? "" : err.message);
  });

  socket.on("updaterooms", (rooms) => {
    state.rooms = Array.isArray(rooms) ? rooms.filter((r) => r && typeof r === "object") : [];
    state.pendingRoom = null;
    state.leftRoomId = null;
    render();
  });

  socket.on("roomclosed", (info) => {
    const id = info && info.id;
    const current = currentRoom();
    if (state.pendingRoom && sameId(state.pendingRoom.id, id)) state.pendingRoom = null;
    state.leftRoomId = id;
    const reason = (info && CLOSED_TEXT[info.reason]) || "The room was closed.";
    const name = current && sameId(current.id, id) ? `“${current.name}”: ` : "";
    showNotice(`${name}${reason} You are back in the lobby.`, "warning");
    el.notice.dataset.reason = (info && info.reason) || "";
    render();
  });

  socket.on("rejected", (info) => {
    const target = {
      join_lobby: el.signinError,
      leave_lobby: el.signoutError,
      create_room: el.createError,
      leave_room: el.leaveError,
    }[info && info.event];
    const text = describeError(info);
    if (target) showError(target, text, info.code);
    else showNotice(text, "error");
  });

  socket.on("replaced", () => {
    replaced = true;
    state.me = null;
    state.rooms = [];
    showNotice("You signed in from another tab or window, so this one stopped.", "warning", {
      label: "Use this tab instead",
      reconnect: true,
      run: () => socket.connect(),
    });
    el.notice.dataset.reason = "replaced";
    render();
  });

  /* ---------- commands ---------- */

  // Emits `event` with an ack; on failure writes the reason into `errorNode`.
  function command(event, payload, { errorNode, button, onOk }) {
    if (!socket.connected) {
      showError(errorNode, "Not connected to the server. Wait until the connection is back.");
      return;
    }
    clearError(errorNode);
    if (button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
    socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, reply) => {
      if (button) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
      if (err) {
        showError(errorNode, "The server did not answer in time. Try again.", "timeout");
      } else if (!reply || reply.ok !== true) {
        const error = reply && reply.error;
        showError(errorNode, describeError(error), error && error.code);
      } else {
        // A step forward makes an old notice ("you left …") stale; errors stay.
        if (el.notice.dataset.kind !== "error") hideNotice();
        onOk(reply);
      }
      render();
    });
  }

  // Binds this tab's user id to the connection. From the form while disconnected
  // (not yet connected, or stopped after `replaced`), it remembers the profile and
  // (re)connects; the "connect" handler then sends it.
  function joinLobby(profile, { fromForm }) {
    if (fromForm && !socket.connected) {
      state.profile = profile;
      clearError(el.signinError);
      if (!socket.active) socket.connect();
      return;
    }
    const payload = { id: state.userId, username: profile.username, auth_level: profile.auth_level };
    const signedIn = Boolean(state.me);
    command("join_lobby", payload, {
      errorNode: signedIn ? el.signoutError : el.signinError,
      button: signedIn ? null : el.signinForm.querySelector("button[type=submit]"),
      onOk: (reply) => {
        state.me = reply.user && typeof reply.user === "object" ? reply.user : payload;
        state.profile = profile;
        saveProfile(profile);
        // The server counts a dropped connection as leaving: say so, once.
        if (state.droppedFrom && (reply.room === null || reply.room === undefined)) {
          showNotice(`The connection dropped, so you left “${state.droppedFrom}”.`, "warning");
          el.notice.dataset.reason = "dropped";
        }
        state.droppedFrom = null;
      },
    });
  }

  el.signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const username = el.signinName.value.trim();
    if (!username) {
      el.signinName.setAttribute("aria-invalid", "true");
      showError(el.signinError, "Please enter your name.");
      el.signinName.focus();
      return;
    }
    el.signinName.removeAttribute("aria-invalid");
    const role = el.signinForm.elements.role.value === "teacher" ? "teacher" : "student";
    joinLobby({ username, auth_level: role }, { fromForm: true });
  });

  el.signout.addEventListener("click", () => {
    command("leave_lobby", { id: state.me ? state.me.id : state.userId }, {
      errorNode: el.signoutError,
      button: el.signout,
      onOk: () => {
        state.me = null;
        state.profile = null;
        state.rooms = [];
        state.pendingRoom = null;
        saveProfile(null);
      },
    });
  });

  function joinRoom(room, button, errorNode) {
    command("join_room", { id: room.id }, {
      errorNode,
      button,
      onOk: (reply) => {
        state.leftRoomId = null;
        if (!myRoomFromList()) state.pendingRoom = reply.room || room;
      },
    });
  }

  el.leave.addEventListener("click", () => {
    const room = currentRoom();
    if (!room) return;
    command("leave_room", { id: room.id }, {
      errorNode: el.leaveError,
      button: el.leave,
      onOk: () => {
        state.pendingRoom = null;
        state.leftRoomId = room.id;
        const hosted = sameId(room.host && room.host.id, state.me && state.me.id);
        showNotice(hosted ? `You closed “${room.name}”.` : `You left “${room.name}”.`, "info");
      },
    });
  });

  /* ---------- decks ---------- */

  function randomInt(lo, hi) {
    return lo + Math.floor(Math.random() * (hi - lo + 1));
  }

  // Arithmetic flashcards with whole-number answers (division cards divide exactly).
  function generateCards(count, op, max) {
    const ops = op === "mixed" ? ["+", "-", "*", "/"] : [op];
    const cards = [];
    for (let i = 1; i <= count; i += 1) {
      const o = ops[randomInt(0, ops.length - 1)];
      let a = randomInt(0, max);
      let b = randomInt(0, max);
      let problem;
      let answer;
      if (o === "+") {
        problem = `${a} + ${b}`;
        answer = a + b;
      } else if (o === "-") {
        if (b > a) [a, b] = [b, a];
        problem = `${a} − ${b}`;
        answer = a - b;
      } else if (o === "*") {
        problem = `${a} × ${b}`;
        answer = a * b;
      } else {
        b = randomInt(1, max);
        answer = randomInt(0, max);
        problem = `${b * answer} ÷ ${b}`;
      }
      cards.push({ id: i, problem, answer: String(answer) });
    }
    return cards;
  }

  // "problem = answer" per line; the last "=" splits, so problems may contain "=".
  function parseCards(text) {
    const cards = [];
    const lines = text.split(/\r?\n/);
    for (let n = 0; n < lines.length; n += 1) {
      const line = lines[n].trim();
      if (!line || line.startsWith("#")) continue;
      const at = line.lastIndexOf("=");
      const problem = at < 0 ? "" : line.slice(0, at).trim();
      const answer = at < 0 ? "" : line.slice(at + 1).trim();
      if (!problem || !answer) {
        throw new Error(`Line ${n + 1} is not “problem = answer”: ${line.slice(0, 40)}`);
      }
      cards.push({ id: cards.length + 1, problem, answer });
    }
    if (cards.length === 0) throw new Error("Paste at least one card.");
    if (cards.length > MAX_CARDS) throw new Error(`A deck holds at most ${MAX_CARDS} cards.`);
    return cards;
  }

  function boundedInt(input, lo, hi, what) {
    const value = Number(input.value);
    if (!Number.isInteger(value) || value < lo || value > hi) {
      throw Object.assign(new Error(`${what} must be a whole number from ${lo} to ${hi}.`), { field: input });
    }
    return value;
  }

  const OP_WORDS = { "+": "addition", "-": "subtraction", "*": "multiplication", "/": "division", mixed: "mixed" };

  function buildDeck() {
    const name = el.deckName.value.trim();
    if (!name) throw Object.assign(new Error("Give the deck a name."), { field: el.deckName });
    let cards;
    let description;
    if (el.createForm.elements.source.value === "paste") {
      try {
        cards = parseCards(el.pasteCards.value);
      } catch (err) {
        throw Object.assign(err, { field: el.pasteCards });
      }
      description = `${cards.length} cards typed in the lobby`;
    } else {
      const count = boundedInt(el.genCount, 1, MAX_CARDS, "Number of cards");
      const max = boundedInt(el.genMax, 1, 1000, "Largest number");
      const op = OP_WORDS[el.genOp.value] ? el.genOp.value : "+";
      cards = generateCards(count, op, max);
      description = `${count} generated ${OP_WORDS[op]} cards, numbers up to ${max}`;
    }
    return {
      name,
      description,
      numProblems: cards.length,
      user_id: state.me ? state.me.id : state.userId,
      user_name: state.me ? state.me.username : null,
      flashcards: cards,
    };
  }

  function syncSource() {
    const paste = el.createForm.elements.source.value === "paste";
    el.pasteFields.hidden = !paste;
    el.generateFields.hidden = paste;
  }
  for (const radio of el.createForm.querySelectorAll("input[name=source]")) {
    radio.addEventListener("change", syncSource);
  }

  el.createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const field of el.createForm.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    const name = el.createName.value.trim();
    let deck;
    try {
      if (!name) throw Object.assign(new Error("Give the room a name."), { field: el.createName });
      deck = buildDeck();
    } catch (err) {
      showError(el.createError, err.message, "local");
      if (err.field) {
        err.field.setAttribute("aria-invalid", "true");
        err.field.focus();
      }
      return;
    }
    command("create_room", { name, deck }, {
      errorNode: el.createError,
      button: el.createForm.querySelector("button[type=submit]"),
      onOk: (reply) => {
        state.leftRoomId = null;
        if (!myRoomFromList()) state.pendingRoom = reply.room || null;
        el.createName.value = "";
      },
    });
  });

  /* ---------- where am I ---------- */

  function myRoomFromList() {
    if (!state.me) return null;
    return (
      state.rooms.find(
        (room) =>
          (room.host && sameId(room.host.id, state.me.id)) ||
          (Array.isArray(room.players) && room.players.some((p) => p && sameId(p.id, state.me.id))),
      ) || null
    );
  }

  function currentRoom() {
    const listed = myRoomFromList();
    if (listed && !sameId(listed.id, state.leftRoomId)) return listed;
    if (!listed && state.pendingRoom) return state.pendingRoom;
    return null;
  }

  /* ---------- rendering ---------- */

  function focusView() {
    const heading = state.view && el.headings[state.view];
    if (heading) heading.focus();
  }

  function render() {
    let view = "signin";
    const room = state.me ? currentRoom() : null;
    if (state.me) view = room ? "room" : "lobby";
    for (const [name, node] of Object.entries(el.views)) node.hidden = name !== view;
    document.body.dataset.view = view;

    if (view === "lobby") renderLobby();
    if (view === "room") renderRoom(room);

    if (view !== state.view) {
      const first = state.view === null;
      state.view = view;
      // The focused control just disappeared with its view: move focus to the new
      // view's heading so keyboard and screen-reader users land somewhere sensible.
      if (first) {
        if (view === "signin") el.signinName.focus();
      } else {
        focusView();
      }
      if (view === "signin") prefillSignin();
    }
  }

  function prefillSignin() {
    const profile = state.profile;
    if (!profile) return;
    el.signinName.value = profile.username;
    const radio = el.signinForm.querySelector(`input[name=role][value=${profile.auth_level === "teacher" ? "teacher" : "student"}]`);
    if (radio) radio.checked = true;
  }

  function roleWords(user) {
    return user && typeof user.auth_level === "string" && user.auth_level ? user.auth_level : "";
  }

  function renderLobby() {
    const me = state.me;
    el.whoami.textContent = `Signed in as ${displayName(me)}${roleWords(me) ? ` (${roleWords(me)})` : ""}`;
    const rooms = state.rooms;
    el.roomsEmpty.hidden = rooms.length > 0;
    el.roomCount.textContent = rooms.length ? `(${rooms.length})` : "";

    // Keyed update: existing items are changed in place so a focused Join button
    // keeps its focus while other rooms come and go.
    const existing = new Map();
    for (const li of el.roomList.children) existing.set(li.dataset.roomId, li);
    const keep = new Set();
    rooms.forEach((room, index) => {
      const key = String(room.id);
      keep.add(key);
      let li = existing.get(key);
      if (!li) li = createRoomItem(room);
      updateRoomItem(li, room);
      if (el.roomList.children[index] !== li) el.roomList.insertBefore(li, el.roomList.children[index] || null);
    });
    for (const [key, li] of existing) {
      if (!keep.has(key)) li.remove();
    }
  }

  function createRoomItem(room) {
    const li = document.createElement("li");
    li.className = "room-item";
    li.dataset.testid = "room-item";
    li.dataset.roomId = String(room.id);
    const text = document.createElement("div");
    const name = document.createElement("p");
    name.className = "room-name";
    name.dataset.testid = "room-name";
    const meta = document.createElement("p");
    meta.className = "room-meta";
    meta.dataset.testid = "room-meta";
    text.append(name, meta);
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.testid = "join-room";
    button.textContent = "Join";
    const error = document.createElement("p");
    error.className = "error";
    error.dataset.testid = "room-error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    button.addEventListener("click", () => {
      const current = state.rooms.find((r) => sameId(r.id, li.dataset.roomId));
      if (current) joinRoom(current, button, error);
    });
    li.append(text, button, error);
    return li;
  }

  function updateRoomItem(li, room) {
    const players = Array.isArray(room.players) ? room.players.length : 0;
    const capacity = Number.isInteger(room.max_players) ? room.max_players : "?";
    const deck = room.deck || {};
    li.dataset.roomName = String(room.name);
    li.querySelector(".room-name").textContent = String(room.name);
    const cards = Number.isInteger(deck.numProblems) ? ` (${deck.numProblems} cards)` : "";
    li.querySelector(".room-meta").textContent =
      `Host: ${displayName(room.host)} · Deck: ${deck.name || "—"}${cards} · ${players} / ${capacity} players`;
    li.dataset.players = String(players);
    const button = li.querySelector("button");
    const full = Number.isInteger(room.max_players) && players >= room.max_players;
    button.setAttribute("aria-label", full ? `Room ${room.name} is full` : `Join room ${room.name}`);
    button.textContent = full ? "Full" : "Join";
    if (button.getAttribute("aria-busy") !== "true") button.disabled = full;
  }

  function renderRoom(room) {
    const me = state.me;
    const hosting = sameId(room.host && room.host.id, me && me.id);
    el.roomTitle.textContent = String(room.name);
    el.views.room.dataset.roomId = String(room.id);
    const hostRole = roleWords(room.host);
    el.roomHost.textContent = `${displayName(room.host)}${hostRole ? ` (${hostRole})` : ""}${hosting ? " — you" : ""}`;
    const deck = room.deck || {};
    const cards = Number.isInteger(deck.numProblems) ? ` · ${deck.numProblems} cards` : "";
    el.roomDeck.textContent = `${deck.name || "—"}${cards}`;
    const players = Array.isArray(room.players) ? room.players : [];
    el.roomCapacity.textContent = `${players.length} / ${Number.isInteger(room.max_players) ? room.max_players : "?"}`;
    el.leave.textContent = hosting ? "Close room" : "Leave room";
    el.roomHint.textContent = hosting
      ? "Students join from their lobby. Closing the room sends everyone back to the lobby."
      : "Waiting for the host to start the race.";

    el.playersEmpty.hidden = players.length > 0;
    el.playerList.replaceChildren(
      ...players.map((player) => {
        const li = document.createElement("li");
        li.dataset.testid = "player";
        li.dataset.userId = String(player.id);
        li.textContent = displayName(player);
        const role = roleWords(player);
        if (role) li.append(badge(role));
        if (sameId(player.id, me && me.id)) li.append(badge("you"));
        return li;
      }),
    );
  }

  function badge(text) {
    const span = document.createElement("span");
    span.className = "badge";
    span.textContent = text;
    return span;
  }

  setConnection("connecting");
  syncSource();
  render();
})();
