/* The lobby page's client: the room protocol and the race (docs/protocol.md in
 * this repository) over socket.io-client 4 with its default settings (long-polling
 * first, then the upgrade to WebSocket), namespace /lobby.
 *
 * Why it is built this way:
 * - Which room we sit in is read from the server's truth, not kept as a flag of our
 *   own: `roomupdated` (our own room, listed or not), or, from a server that does not
 *   send it, `updaterooms`. Acks only bridge the moment between "the server said
 *   yes" and the event that shows it (the protocol does not order them).
 * - The lobby's list is the room feed (`watch_rooms`: the newest 100 rooms, or those
 *   whose name holds the search box's text, then `roomschanged` deltas applied in
 *   version order; a gap means asking again), so a change costs a few rooms, not
 *   the whole list. A server that answers `watch_rooms` with an error keeps sending
 *   full `updaterooms` lists, and the page keeps showing them.
 * - Every command asks for an ack with a timeout, so each error can be shown next
 *   to the button that caused it; `rejected` is still handled for completeness.
 * - Commands are refused locally while disconnected: socket.io-client would buffer
 *   them and send them before our re-`join_lobby`, where they would fail.
 * - Text from the server goes into the page with textContent only, never as HTML.
 * - The race runs on the server's clock: countdowns are drawn from `start_at` and
 *   an offset measured with `time_sync` (the sample with the lowest round trip),
 *   never from ticks the server sends. The page never knows an answer before
 *   `raceover`; it shows right/wrong from the `answer` ack.
 * - Seats outlive a dropped connection (race.md): the server keeps our place for a
 *   grace. The tab keeps its user id, profile and seat `token` in sessionStorage, so
 *   after a reload or a dropped network it sends `join_lobby {id, token}` by itself
 *   and lands where it was (the room, the running race through `racestate`); it
 *   shows "Reconnecting…" until the server has answered. A school's site may sign
 *   users in: it opens the page with `#credential=...`, which the tab keeps (and
 *   takes out of the address bar) and sends instead of a name and a role.
 * - Screen readers hear the race through one polite live region (start, go, each
 *   verdict with the next problem, the end); the timers are role=timer, silent.
 */
"use strict";

(() => {
  const NAMESPACE = "/lobby";
  const ACK_TIMEOUT_MS = 10000;
  const USER_ID_KEY = "roomactors.userId";
  const PROFILE_KEY = "roomactors.profile";
  const TOKEN_KEY = "roomactors.seatToken";
  const CREDENTIAL_KEY = "roomactors.credential";
  const MAX_CARDS = 1000;
  const TIME_SYNC_SAMPLES = 5;
  const TIME_SYNC_TIMEOUT_MS = 3000;
  const TICK_MS = 100;
  const RACE_CAP_MS = 3600 * 1000; // end_at - start_at when the race has no time limit

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
    roomSearch: $("room-search"),
    roomsError: $("rooms-error"),
    joinCodeForm: $("join-code-form"),
    joinCode: $("join-code"),
    joinCodeError: $("join-code-error"),
    createListed: $("create-listed"),
    roomCodeBox: document.querySelector("[data-testid=room-code-box]"),
    roomCode: document.querySelector("[data-testid=room-code]"),
    copyCode: $("copy-code"),
    copyStatus: document.querySelector("[data-testid=copy-status]"),
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
    roomState: document.querySelector("[data-testid=room-state]"),
    roomGrid: $("room-grid"),
    raceLive: $("race-live"),
    racePanel: $("race-panel"),
    raceHeading: $("race-heading"),
    racePhase: document.querySelector("[data-testid=race-phase]"),
    raceTimer: document.querySelector("[data-testid=race-timer]"),
    countdown: document.querySelector("[data-testid=countdown]"),
    countdownNumber: document.querySelector("[data-testid=countdown-number]"),
    answerForm: $("answer-form"),
    cardCount: $("card-count"),
    problem: $("problem"),
    answerInput: $("answer-input"),
    answerFeedback: document.querySelector("[data-testid=answer-feedback]"),
    raceDone: $("race-done"),
    lanes: document.querySelector("[data-testid=lanes]"),
    raceError: $("race-error"),
    endRace: $("end-race"),
    resultsPanel: $("results-panel"),
    resultsHeading: $("results-heading"),
    resultsReason: document.querySelector("[data-testid=results-reason]"),
    ranking: document.querySelector("[data-testid=ranking] tbody"),
    myAnswers: document.querySelector("[data-testid=my-answers]"),
    myAnswersBody: document.querySelector("[data-testid=my-answers] tbody"),
    allAnswers: document.querySelector("[data-testid=all-answers]"),
    allAnswersStatus: document.querySelector("[data-testid=all-answers-status]"),
    matrix: document.querySelector("[data-testid=answers-matrix]"),
    downloadCsv: $("download-csv"),
    resultsError: $("results-error"),
    rematch: $("rematch"),
    rematchHint: document.querySelector("[data-testid=rematch-hint]"),
    setupPanel: $("setup-panel"),
    setupHeading: $("setup-heading"),
    startForm: $("start-form"),
    optCountdown: $("opt-countdown"),
    optTimeLimit: $("opt-time-limit"),
    optShuffle: $("opt-shuffle"),
    optLateJoin: $("opt-late-join"),
    startError: $("start-error"),
    startRace: $("start-race"),
    lockControl: document.querySelector("[data-testid=lock-control]"),
    lockRoom: $("lock-room"),
    lockHint: $("lock-hint"),
    playersError: $("players-error"),
  };

  const state = {
    userId: tabUserId(),
    credential: takeCredential(), // a signed identity from the school's site, or null
    me: null, // {id, username, auth_level} once join_lobby succeeded
    rejoining: false, // a join_lobby sent by itself (reload, reconnect) is on its way
    connectionShown: [], // the last connection states shown, oldest first (for tests and debugging)
    pendingRaceState: null, // a racestate that came before our join_lobby's ack
    profile: loadProfile(), // what the user signed in with; re-sent after a reconnect
    rooms: [],
    // Our room as the server last described it: a roomupdated's (or a create/join
    // ack's) summary. From a server without roomupdated: an ack's, until an updaterooms.
    pendingRoom: null,
    roomUpdates: false, // the server sends roomupdated (so it, not the list, says where we sit)
    leftRoomId: null, // a room we left (ack, roomclosed, kicked): late news of it is ignored
    // The room feed: `watching` once a watch_rooms ack came; `version` of the last
    // snapshot or delta applied; `request` numbers watch_rooms so only the newest
    // ack counts; `pending` while one is on its way; `fallback` when the server
    // refused the feed (full lists then, searched here).
    feed: { watching: false, version: 0, request: 0, pending: false, fallback: false },
    view: null,
    droppedFrom: null, // name of the room we sat in when the connection dropped
    race: null, // the race running in our room (racestart/racestate), until raceover
    results: null, // our room's last raceover
    allAnswers: null, // the host's race_results for state.results' race
    lockWanted: null, // the host's lock checkbox, until an updaterooms shows it
  };

  // After a reload (a profile or a credential kept for this tab) the page is coming
  // back, not arriving: it says "Reconnecting…" until the server has answered.
  state.rejoining = Boolean(state.profile || state.credential);
  if (state.credential) {
    // Signed in by the school's site: no name to type, no role to pick.
    el.signinForm.querySelector("[data-testid=name-field]").hidden = true;
    el.signinForm.querySelector("[data-testid=role-picker]").hidden = true;
    el.signinForm.querySelector("[data-testid=signed-hint]").hidden = false;
    el.signinName.required = false;
    document.body.dataset.identity = "signed";
  }

  // The server's clock: serverNow() = performance.now() + offset (race.md "Time").
  const clock = { offset: null, bestRtt: Infinity };

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

  // The seat's token from our last join_lobby ack: the key to our held seat after
  // a reload or a drop (race.md "Identity"). Per tab, like the user id.
  function loadToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return memoryToken;
    }
  }

  let memoryToken = null;

  function saveToken(token) {
    memoryToken = typeof token === "string" ? token : null;
    try {
      if (memoryToken) sessionStorage.setItem(TOKEN_KEY, memoryToken);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* no storage: kept in memory until the tab closes */
    }
  }

  // `#credential=...` from the school's site: kept for this tab (a reload must not
  // lose it) and taken out of the address bar, so it is not bookmarked or shared.
  function takeCredential() {
    const match = /(?:^#|&)credential=([^&]+)/.exec(window.location.hash || "");
    let credential = match ? decodeURIComponent(match[1]) : null;
    try {
      if (credential) sessionStorage.setItem(CREDENTIAL_KEY, credential);
      else credential = sessionStorage.getItem(CREDENTIAL_KEY);
    } catch {
      /* no storage: this page view only */
    }
    if (match && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return credential || null;
  }

  function newTabUserId() {
    const id = randomId();
    try {
      sessionStorage.setItem(USER_ID_KEY, id);
    } catch {
      /* no storage: this page view only */
    }
    return id;
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
    node_unavailable: "The server that holds this room did not answer. Try again, or pick another room.",
    room_full: "That room is full.",
    not_in_room: "You are not in that room.",
    forbidden: "This tab is not allowed to act for that user.",
    identity_mismatch: "This connection is signed in as someone else.",
    identity_taken: "Someone is already signed in with this tab's name tag. Close the other tab, or open a new one.",
    unauthenticated: "Your sign-in link from the school's site did not work.",
    too_many_rooms: "The server has too many rooms right now. Try again later.",
    rate_limited: "Too many requests. Wait a moment and try again.",
    internal: "Something went wrong on the server. Try again.",
    not_host: "Only the room's host can do that.",
    not_racing: "You are not a player of this race.",
    race_in_progress: "A race is running. Wait until it is over.",
    no_players: "Nobody has joined yet. Wait for students before starting.",
    race_not_started: "The race has not started yet. Wait for the countdown.",
    race_over: "The race is over.",
    wrong_card: "That card was already answered. Go on with the next one.",
    race_not_found: "There are no results for that race.",
    banned: "The host removed you from this room, so you cannot join it again.",
    room_locked: "The host locked this room. Ask them to unlock it.",
  };

  const RACE_END_TEXT = {
    all_done: "Everyone answered every card.",
    time_up: "Time is up.",
    host_ended: "The host ended the race.",
    host_left: "The host closed the room.",
    host_disconnected: "The host lost their connection.",
    shutdown: "The server is shutting down.",
  };

  const CLOSED_TEXT = {
    host_left: "The host closed the room.",
    host_disconnected: "The host lost their connection, so the room was closed.",
    shutdown: "The server is shutting down, so the room was closed.",
    crashed: "The room stopped because of a server error.",
    node_lost: "The server that held this room stopped, so the room was closed.",
  };

  function describeError(error) {
    const code = error && typeof error.code === "string" ? error.code : "internal";
    const message = error && typeof error.message === "string" ? error.message : "";
    const words = ERROR_TEXT[code];
    if (code === "invalid_payload") return message ? `${words}: ${message}` : `${words}.`;
    // the server says what is wrong with a credential (expired, not signed for this server)
    if (code === "unauthenticated" && message) return `${words} ${message.charAt(0).toUpperCase()}${message.slice(1)}.`;
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

  // Default settings on purpose (polling first, then the upgrade to WebSocket), but
  // no close packet on unload: a reload must look like a drop, so that the server
  // keeps our seat for its reconnect grace instead of counting a goodbye.
  const socket = window.io(NAMESPACE, { closeOnBeforeunload: false });
  window.roomactorsLobby = { socket, state }; // for debugging and the browser tests

  function transportName() {
    const engine = socket.io.engine;
    return engine && engine.transport ? engine.transport.name : "";
  }

  function setConnection(kind, detail) {
    el.connection.dataset.state = kind;
    const transport = kind === "connected" ? transportName() : "";
    el.connection.dataset.transport = transport;
    if (kind === "connected" && state.rejoining) kind = "reconnecting"; // until join_lobby answers
    state.connectionShown.push(kind);
    if (state.connectionShown.length > 20) state.connectionShown.shift();
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
    // Back after a reload or a drop: our seat waits for us (the reconnect grace), so
    // join again as the same user, with the seat's token (or the credential).
    if (state.profile || state.credential) {
      state.rejoining = true;
      setConnection("reconnecting");
      joinLobby(state.profile, { fromForm: false });
    }
    syncClock();
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
    if (state.feed.watching) return; // a list sent before the feed started
    state.rooms = newestFirst(rooms);
    if (!state.roomUpdates) {
      state.pendingRoom = null;
      state.leftRoomId = null;
    }
    state.lockWanted = null;
    render();
  });

  /* ---------- the room feed and our own room ---------- */

  const ROOM_LIMIT = 100;
  const SEARCH_DELAY_MS = 250;

  const objects = (list) => (Array.isArray(list) ? list.filter((r) => r && typeof r === "object") : []);
  // Newest (highest id) first, as the feed sends them; lists come oldest first.
  const newestFirst = (list) => objects(list).sort((a, b) => Number(b.id) - Number(a.id) || 0);

  // Asks for the feed: the newest rooms, or those whose name holds the search text.
  // The ack is the snapshot; only the newest request's ack counts.
  function watchRooms() {
    const feed = state.feed;
    if (!socket.connected || feed.fallback) return;
    feed.request += 1;
    feed.pending = true;
    const request = feed.request;
    const name = el.roomSearch.value.trim();
    const payload = name ? { filter: { name }, limit: ROOM_LIMIT } : { limit: ROOM_LIMIT };
    socket.timeout(ACK_TIMEOUT_MS).emit("watch_rooms", payload, (err, reply) => {
      if (request !== feed.request) return;
      feed.pending = false;
      const error = err ? { code: "timeout" } : reply && reply.ok === true ? null : (reply && reply.error) || {};
      if (error && (error.code === "rate_limited" || (error.code === "timeout" && feed.watching))) {
        // The last filter stays in force; the next search asks again.
        showError(el.roomsError, error.code === "timeout" ? "The server did not answer the search. Try again." :
          describeError(error), error.code);
        return;
      }
      clearError(el.roomsError);
      if (error) {
        // A server without the feed: it keeps sending full lists, searched here.
        feed.fallback = true;
        feed.watching = false;
      } else {
        feed.watching = true;
        feed.version = Number(reply.version) || 0;
        state.rooms = newestFirst(reply.rooms);
      }
      render();
    });
  }

  socket.on("roomschanged", (change) => {
    const feed = state.feed;
    if (!feed.watching || feed.pending || !change || typeof change.version !== "number") return;
    if (change.version <= feed.version) return; // sent before our newest snapshot
    if (change.snapshot === true) {
      feed.version = change.version;
      state.rooms = newestFirst(change.rooms);
    } else if (change.version !== feed.version + 1) {
      watchRooms(); // a gap: start over from a fresh snapshot
      return;
    } else {
      feed.version = change.version;
      const upsert = new Map(objects(change.upsert).map((room) => [String(room.id), room]));
      const gone = new Set((Array.isArray(change.remove) ? change.remove : []).map(String));
      const kept = state.rooms.filter((room) => !gone.has(String(room.id)) && !upsert.has(String(room.id)));
      state.rooms = newestFirst([...kept, ...upsert.values()]).slice(0, ROOM_LIMIT);
    }
    render();
  });

  // Our own room, listed or not (the only way to see an unlisted one).
  socket.on("roomupdated", (info) => {
    const room = info && info.room;
    if (!room || typeof room !== "object") return;
    state.roomUpdates = true;
    if (sameId(room.id, state.leftRoomId)) return; // news of a room we left
    state.pendingRoom = room;
    state.lockWanted = null;
    render();
  });

  // Each connection starts its own feed (watch_rooms needs no sign-in). Our room
  // is forgotten: a server that kept our seat sends roomupdated after join_lobby.
  socket.on("connect", () => {
    state.feed = { watching: false, version: 0, request: state.feed.request, pending: false, fallback: false };
    if (state.roomUpdates) state.pendingRoom = null;
    watchRooms();
    render();
  });

  let searchTimer = null;
  el.roomSearch.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      if (state.feed.fallback) render();
      else watchRooms();
    }, SEARCH_DELAY_MS);
  });

  // Codes are shown in capitals; people type them any way, with stray spaces.
  el.joinCodeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const code = el.joinCode.value.trim().toUpperCase();
    el.joinCode.value = code;
    if (!code) {
      el.joinCode.setAttribute("aria-invalid", "true");
      showError(el.joinCodeError, "Type the room's code first.", "local");
      el.joinCode.focus();
      return;
    }
    el.joinCode.removeAttribute("aria-invalid");
    command("join_room", { code }, {
      errorNode: el.joinCodeError,
      button: el.joinCodeForm.querySelector("button[type=submit]"),
      onOk: (reply) => {
        adoptAckRoom(reply.room);
        el.joinCode.value = "";
      },
      onError: () => {
        if (el.joinCodeError.dataset.code === "room_not_found") {
          el.joinCodeError.textContent = "No open room has that code. Check it and try again.";
        }
        if (el.joinCodeError.dataset.code !== "timeout") el.joinCode.setAttribute("aria-invalid", "true");
        el.joinCode.focus();
      },
    });
  });
  el.joinCode.addEventListener("input", () => {
    el.joinCode.removeAttribute("aria-invalid");
    clearError(el.joinCodeError);
  });

  el.copyCode.addEventListener("click", async () => {
    const code = el.roomCode.textContent;
    try {
      await navigator.clipboard.writeText(code);
      el.copyStatus.textContent = `Copied ${code}.`;
    } catch {
      // No clipboard access (an insecure page, a refused permission): select it instead.
      const range = document.createRange();
      range.selectNodeContents(el.roomCode);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      el.copyStatus.textContent = "The code is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
    }
  });

  // A create/join ack's room bridges the moment until roomupdated (or, from an
  // older server, the list) shows it; a newer roomupdated of that room wins.
  function adoptAckRoom(room) {
    state.leftRoomId = null;
    if (!room || typeof room !== "object") return;
    if (state.roomUpdates) {
      if (!(state.pendingRoom && sameId(state.pendingRoom.id, room.id))) state.pendingRoom = room;
    } else if (!myRoomFromList()) {
      state.pendingRoom = room;
    }
  }

  socket.on("roomclosed", (info) => {
    const id = info && info.id;
    const current = currentRoom();
    if (state.pendingRoom && sameId(state.pendingRoom.id, id)) state.pendingRoom = null;
    state.leftRoomId = id;
    forgetRace();
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
      start_race: el.startError,
      answer: el.raceError,
      end_race: el.raceError,
      race_results: el.resultsError,
      kick_player: el.playersError,
      lock_room: el.playersError,
    }[info && info.event];
    const text = describeError(info);
    if (target) showError(target, text, info.code);
    else showNotice(text, "error");
  });

  socket.on("replaced", () => {
    replaced = true;
    state.me = null;
    forgetRace();
    state.rooms = [];
    state.pendingRoom = null;
    showNotice("You signed in from another tab or window, so this one stopped.", "warning", {
      label: "Use this tab instead",
      reconnect: true,
      run: () => socket.connect(),
    });
    el.notice.dataset.reason = "replaced";
    render();
  });

  /* ---------- the race: the server's clock ---------- */

  const serverNow = () => performance.now() + (clock.offset === null ? 0 : clock.offset);
  window.roomactorsLobby.serverNow = serverNow;
  window.roomactorsLobby.clock = clock;

  // A few time_sync samples, one after the other; the one with the lowest round
  // trip wins (its half-RTT guess is the tightest). A server without time_sync
  // leaves the offset to racestart's server_ms (see adoptServerTime).
  async function syncClock() {
    clock.bestRtt = Infinity;
    for (let i = 0; i < TIME_SYNC_SAMPLES; i += 1) {
      if (!socket.connected) return;
      const t0 = performance.now();
      const reply = await new Promise((resolve) => {
        socket.timeout(TIME_SYNC_TIMEOUT_MS).emit("time_sync", { t0 }, (err, r) => resolve(err ? null : r));
      });
      const t1 = performance.now();
      if (!reply || reply.ok !== true || typeof reply.server_ms !== "number") return;
      const rtt = t1 - t0;
      if (rtt < clock.bestRtt) {
        clock.bestRtt = rtt;
        clock.offset = reply.server_ms + rtt / 2 - t1;
      }
    }
    render();
  }

  function adoptServerTime(serverMs) {
    if (clock.offset === null && typeof serverMs === "number") clock.offset = serverMs - performance.now();
  }

  /* ---------- the race: events ---------- */

  let lastAnnouncement = "";
  // The one place the race speaks to screen readers. The same words twice in a row
  // would not be read again, so a repeat gets an invisible difference.
  function announce(text) {
    const words = text === lastAnnouncement ? `${text}\u00a0` : text;
    lastAnnouncement = words;
    el.raceLive.textContent = words;
  }

  const isMe = (id) => Boolean(state.me) && sameId(id, state.me.id);

  function progressMap(players) {
    const map = new Map();
    for (const p of Array.isArray(players) ? players : []) {
      if (p && typeof p === "object") map.set(String(p.id), p);
    }
    return map;
  }

  // racestart and racestate both describe a race to join in; racestate adds where
  // this user is (`next`) and everyone's progress so far.
  function beginRace(info, { next, progress, players }) {
    adoptServerTime(info.server_ms);
    const cards = Array.isArray(info.cards) ? info.cards.filter((c) => c && Number.isInteger(c.index)) : [];
    const racers = (Array.isArray(players) ? players : []).filter((p) => p && typeof p === "object");
    const isPlayer = racers.some((p) => isMe(p.id));
    state.race = {
      roomId: info.id,
      raceId: info.race_id,
      startAt: Number(info.start_at),
      endAt: Number(info.end_at),
      cards,
      players: racers.map((p) => ({ id: p.id, username: p.username })),
      progress: progressMap(progress),
      isPlayer,
      next: isPlayer ? next : null,
      started: false,
      pending: false,
      feedback: null,
      saidDone: new Set(),
    };
    state.results = null;
    state.allAnswers = null;
    clearError(el.raceError);
    clearError(el.resultsError);
    clearError(el.startError);
    el.answerInput.value = "";
    // Rounded: the clock estimate is off by up to half a round trip either way.
    const wait = Math.round((state.race.startAt - serverNow()) / 1000);
    if (wait > 0) {
      announce(`The race starts in ${wait} ${wait === 1 ? "second" : "seconds"}. ` +
        (isPlayer ? "Type each answer and press Enter." : "You are watching."));
    }
    startTicker();
    render();
    // Players wait in the answer field (read-only until "go"), so they can type at once.
    if (isPlayer && state.race.next !== null) el.answerInput.focus();
    else el.raceHeading.focus();
  }

  socket.on("racestart", (info) => {
    if (!info || typeof info !== "object") return;
    const first = Array.isArray(info.cards) ? info.cards.find((c) => c && Number.isInteger(c.index)) : undefined;
    const firstCard = first ? first.index : null;
    beginRace(info, { next: firstCard, progress: [], players: info.players });
  });

  socket.on("racestate", (info) => {
    if (!info || typeof info !== "object") return;
    if (!state.me) {
      // Coming back after a reload: the server sends racestate as it reseats us,
      // before our join_lobby's ack says who we are. Applied once the ack is in.
      state.pendingRaceState = info;
      return;
    }
    applyRaceState(info);
  });

  function applyRaceState(info) {
    const progress = Array.isArray(info.progress) ? info.progress : [];
    const next = Number.isInteger(info.next) ? info.next : null;
    beginRace(info, { next, progress, players: progress });
  }

  socket.on("raceprogress", (info) => {
    const race = state.race;
    if (!race || !info || !sameId(info.race_id, race.raceId) || !sameId(info.id, race.roomId)) return;
    race.progress = progressMap(info.players);
    for (const p of race.progress.values()) {
      // A latecomer appears in progress before any list says so.
      if (!race.players.some((q) => sameId(q.id, p.id))) race.players.push({ id: p.id, username: p.username });
      if (p.done && !race.saidDone.has(String(p.id)) && !isMe(p.id)) {
        race.saidDone.add(String(p.id));
        announce(`${displayName(p)} answered every card.`);
      }
    }
    renderLanes();
  });

  socket.on("raceover", (info) => {
    if (!info || typeof info !== "object") return;
    stopTicker();
    state.race = null;
    state.results = {
      roomId: info.id,
      raceId: info.race_id,
      reason: info.reason,
      ranking: Array.isArray(info.ranking) ? info.ranking : [],
      cards: Array.isArray(info.cards) ? info.cards : [],
      mine: Array.isArray(info.mine) ? info.mine : [],
    };
    state.allAnswers = null;
    clearError(el.resultsError);
    const mine = state.results.ranking.find((r) => isMe(r.id));
    const where = mine ? ` You placed ${ordinal(mine.place)} with ${mine.correct} right.` : "";
    announce(`The race is over. ${RACE_END_TEXT[info.reason] || ""}${where}`);
    const room = currentRoom();
    // A closing room (host_left, shutdown, ...) has no results left to ask for.
    const roomStays = ["all_done", "time_up", "host_ended"].includes(info.reason);
    if (roomStays && room && sameId(room.id, info.id) && isHost(room)) fetchAllAnswers(room, info.race_id);
    render();
    if (!el.resultsPanel.hidden) el.resultsHeading.focus();
  });

  socket.on("kicked", (info) => {
    const id = info && info.id;
    const current = currentRoom();
    if (state.pendingRoom && sameId(state.pendingRoom.id, id)) state.pendingRoom = null;
    state.leftRoomId = id;
    forgetRace();
    const name = current && sameId(current.id, id) ? `“${current.name}”` : "the room";
    showNotice(`The host removed you from ${name}. You are back in the lobby.`, "warning");
    el.notice.dataset.reason = "kicked";
    render();
  });

  /* ---------- commands ---------- */

  // Emits `event` with an ack; on failure writes the reason into `errorNode`.
  function command(event, payload, { errorNode, button, onOk, onError }) {
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
        if (onError) onError();
      } else if (!reply || reply.ok !== true) {
        const error = reply && reply.error;
        showError(errorNode, describeError(error), error && error.code);
        if (onError) onError(error);
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
    const token = loadToken();
    const payload = state.credential
      ? { credential: state.credential }
      : { id: state.userId, username: profile.username, auth_level: profile.auth_level, ...(token ? { token } : {}) };
    const signedIn = Boolean(state.me);
    const done = () => {
      state.rejoining = false;
      if (socket.connected) setConnection("connected");
    };
    command("join_lobby", payload, {
      errorNode: signedIn ? el.signoutError : el.signinError,
      button: signedIn ? null : el.signinForm.querySelector("button[type=submit]"),
      onOk: (reply) => {
        done();
        state.me = reply.user && typeof reply.user === "object" ? reply.user : payload;
        if (state.credential) profile = { username: state.me.username || "", auth_level: state.me.auth_level };
        state.profile = profile;
        saveProfile(profile);
        saveToken(reply.token);
        // The seat was given up (the grace ran out, or the server restarted): say so, once.
        if (state.droppedFrom && (reply.room === null || reply.room === undefined)) {
          showNotice(`The connection dropped, so you left “${state.droppedFrom}”.`, "warning");
          el.notice.dataset.reason = "dropped";
        }
        state.droppedFrom = null;
        // Seated nowhere: a race we saw is not ours any more. Still seated (back
        // within the server's grace): racestate brings the race back.
        const raceState = state.pendingRaceState;
        state.pendingRaceState = null;
        if (reply.room === null || reply.room === undefined) forgetRace();
        else if (raceState) applyRaceState(raceState);
      },
      onError: (error) => {
        done();
        if (error && error.code === "identity_taken") {
          // Another tab holds this tab's user id (a duplicated tab took the seat, and
          // with it the token): this tab goes on as a new player.
          state.userId = newTabUserId();
          saveToken(null);
        }
        if (!fromForm && !signedIn) {
          // an automatic rejoin that failed: back to the sign-in form, which shows why
          state.profile = null;
          state.me = null;
        }
      },
    });
  }

  el.signinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.credential) {
      joinLobby(null, { fromForm: true }); // the school's site said who we are
      return;
    }
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
        saveToken(null);
        forgetRace();
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
      onOk: (reply) => adoptAckRoom(reply.room || room),
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
        forgetRace();
        const hosted = sameId(room.host && room.host.id, state.me && state.me.id);
        showNotice(hosted ? `You closed “${room.name}”.` : `You left “${room.name}”.`, "info");
      },
    });
  });

  /* ---------- the race: commands ---------- */

  const isHost = (room) => Boolean(room && room.host) && isMe(room.host.id);

  // Seconds from a number field: empty is `empty`; otherwise a number within bounds.
  function seconds(input, lo, hi, what, empty) {
    const text = input.value.trim();
    if (text === "") {
      if (empty !== undefined) return empty;
      throw Object.assign(new Error(`${what} is needed.`), { field: input });
    }
    const value = Number(text);
    if (!Number.isFinite(value) || value < lo || value > hi) {
      throw Object.assign(new Error(`${what} must be from ${lo} to ${hi} seconds.`), { field: input });
    }
    return value;
  }

  el.startForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const room = currentRoom();
    if (!room) return;
    const fromResults = event.submitter === el.rematch;
    const errorNode = fromResults ? el.resultsError : el.startError;
    for (const field of el.startForm.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    let payload;
    try {
      payload = {
        id: room.id,
        countdown: seconds(el.optCountdown, 0, 10, "The countdown", 3),
        time_limit: seconds(el.optTimeLimit, 10, 3600, "The time limit", null),
        shuffle: el.optShuffle.checked,
        late_join: el.optLateJoin.checked,
      };
    } catch (err) {
      showError(errorNode, err.message, "local");
      err.field.setAttribute("aria-invalid", "true");
      err.field.focus();
      return;
    }
    clearError(el.resultsError);
    clearError(el.startError);
    command("start_race", payload, {
      errorNode,
      button: fromResults ? el.rematch : el.startRace,
      onOk: () => {}, // racestart (to every member) carries the race
    });
  });

  el.answerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const race = state.race;
    if (!race || race.next === null || race.pending) return;
    if (serverNow() < race.startAt) {
      showFeedback("wait", "Wait for the start…");
      return;
    }
    const given = el.answerInput.value;
    if (!given.trim()) {
      showFeedback("wait", "Type an answer first.");
      return;
    }
    if (!socket.connected) {
      showError(el.raceError, "Not connected to the server. Wait until the connection is back.");
      return;
    }
    const card = race.next;
    race.pending = true;
    // readOnly, not disabled: a disabled field would lose the keyboard focus.
    el.answerInput.readOnly = true;
    socket.timeout(ACK_TIMEOUT_MS).emit("answer", { id: race.roomId, race_id: race.raceId, card, answer: given },
      (err, reply) => {
        race.pending = false;
        el.answerInput.readOnly = false;
        if (state.race !== race) return; // the race ended meanwhile; raceover says how it went
        if (err) {
          showError(el.raceError, "The server did not answer in time. Try again.", "timeout");
        } else if (!reply || reply.ok !== true) {
          const error = reply && reply.error;
          showError(el.raceError, describeError(error), error && error.code);
        } else {
          clearError(el.raceError);
          race.next = Number.isInteger(reply.next) ? reply.next : null;
          countOwnAnswer(race, reply.correct === true);
          el.answerInput.value = "";
          const verdict = reply.correct ? "Right." : "Wrong.";
          showFeedback(reply.correct ? "right" : "wrong", reply.correct ? "✓ Right" : "✗ Wrong — on to the next card");
          const upcoming = race.next === null ? null : race.cards.find((c) => c.index === race.next);
          announce(upcoming ? `${verdict} Next: ${upcoming.problem}` : `${verdict} That was your last card.`);
          render();
          if (race.next === null) el.raceDone.focus();
        }
      });
  });

  // Our own lane moves with the ack; the next raceprogress (coalesced by the
  // server) confirms it.
  function countOwnAnswer(race, correct) {
    const key = String(state.me.id);
    const mine = race.progress.get(key) || { id: state.me.id, username: state.me.username, answered: 0, correct: 0 };
    race.progress.set(key, {
      ...mine,
      answered: (Number(mine.answered) || 0) + 1,
      correct: (Number(mine.correct) || 0) + (correct ? 1 : 0),
      done: race.next === null,
    });
  }

  function showFeedback(kind, text) {
    el.answerFeedback.dataset.result = kind;
    el.answerFeedback.textContent = text;
    if (state.race) state.race.feedback = { kind, text };
  }

  el.endRace.addEventListener("click", () => {
    const race = state.race;
    if (!race) return;
    command("end_race", { id: race.roomId }, { errorNode: el.raceError, button: el.endRace, onOk: () => {} });
  });

  function fetchAllAnswers(room, raceId) {
    el.allAnswersStatus.textContent = "Loading every student’s answers…";
    command("race_results", { id: room.id, race_id: raceId }, {
      errorNode: el.resultsError,
      button: null,
      onOk: (reply) => {
        if (state.results && sameId(state.results.raceId, raceId) && reply.results) state.allAnswers = reply.results;
      },
    });
  }

  function kick(room, player, button) {
    command("kick_player", { id: room.id, user: player.id }, {
      errorNode: el.playersError,
      button,
      onOk: () => announce(`${displayName(player)} was removed from the room.`),
    });
  }

  el.lockRoom.addEventListener("change", () => {
    const room = currentRoom();
    if (!room) return;
    const locked = el.lockRoom.checked;
    state.lockWanted = locked;
    // No `button`: disabling the checkbox would take the keyboard focus away.
    command("lock_room", { id: room.id, locked }, {
      errorNode: el.playersError,
      button: null,
      onOk: () => announce(locked ? "The room is locked." : "The room is open again."),
      onError: () => {
        state.lockWanted = null;
      },
    });
  });

  el.downloadCsv.addEventListener("click", () => {
    const results = state.allAnswers;
    const room = currentRoom();
    if (!results) return;
    const blob = new Blob([resultsCsv(results)], { type: "text/csv;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `race-${slug(room ? room.name : "room")}-${results.race_id}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  });

  function slug(text) {
    return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "room";
  }

  // One row per student and card. A cell a spreadsheet would run as a formula
  // (=, +, -, @ first, unless it is a plain number) gets a leading apostrophe:
  // students type these answers.
  function csvCell(value) {
    let text = value === null || value === undefined ? "" : String(value);
    if (/^[=+\-@\t\r]/.test(text) && !/^[-+]?\d+(?:[.,/]\d+)?$/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function resultsCsv(results) {
    const rows = [["place", "student", "user_id", "card", "problem", "right_answer", "given", "correct", "seconds"]];
    const ranking = Array.isArray(results.ranking) ? results.ranking : [];
    const cards = Array.isArray(results.cards) ? results.cards : [];
    const answers = Array.isArray(results.answers) ? results.answers : [];
    for (const student of orderedByRanking(answers, ranking)) {
      const place = ranking.find((r) => sameId(r.id, student.id));
      const given = new Map((Array.isArray(student.mine) ? student.mine : []).map((a) => [a.index, a]));
      cards.forEach((card, position) => {
        const a = given.get(card.index);
        rows.push([
          place ? place.place : "", displayName(student), student.id, position + 1, card.problem, card.answer,
          a ? a.given : "", a ? (a.correct ? "yes" : "no") : "", a ? (a.ms / 1000).toFixed(3) : "",
        ]);
      });
    }
    return `\ufeff${rows.map((row) => row.map(csvCell).join(",")).join("\r\n")}\r\n`;
  }

  function orderedByRanking(list, ranking) {
    const rank = (item) => {
      const at = ranking.findIndex((r) => sameId(r.id, item.id));
      return at < 0 ? ranking.length : at;
    };
    return [...list].sort((a, b) => rank(a) - rank(b));
  }

  /* ---------- the race: timers ---------- */

  let ticker = null;

  function startTicker() {
    if (ticker === null) ticker = setInterval(tick, TICK_MS);
    tick();
  }

  function stopTicker() {
    if (ticker !== null) clearInterval(ticker);
    ticker = null;
  }

  // Redraws the clocks; at "go" it re-renders once and says so. Silent otherwise.
  function tick() {
    const race = state.race;
    if (!race) {
      stopTicker();
      return;
    }
    const now = serverNow();
    if (!race.started && now >= race.startAt) {
      race.started = true;
      announce(race.isPlayer && race.next !== null ? `Go! ${cardWords(race)}` : "The race has started.");
      render();
    }
    const limited = race.endAt - race.startAt < RACE_CAP_MS;
    if (!race.started) {
      const left = Math.max(1, Math.ceil((race.startAt - now) / 1000));
      el.countdownNumber.textContent = String(left);
      el.racePhase.textContent = "Starting in";
      el.raceTimer.textContent = `${left} s`;
    } else if (limited) {
      const left = Math.max(0, race.endAt - now);
      el.racePhase.textContent = "Time left";
      el.raceTimer.textContent = clockText(left, true);
      // Said once, and only when it is news (not in a race of 20 s or less).
      if (left <= 10000 && !race.saidTen && race.endAt - race.startAt > 20000) {
        race.saidTen = true;
        announce("Ten seconds left.");
      }
    } else {
      el.racePhase.textContent = "Time";
      el.raceTimer.textContent = clockText(now - race.startAt, false);
    }
  }

  function clockText(ms, roundUp) {
    const total = roundUp ? Math.ceil(ms / 1000) : Math.floor(ms / 1000);
    return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
  }

  function timeText(ms) {
    if (typeof ms !== "number") return "—";
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    const minutes = Math.floor(ms / 60000);
    return `${minutes} min ${((ms % 60000) / 1000).toFixed(1)} s`;
  }

  const ordinals = new Intl.PluralRules("en", { type: "ordinal" });
  function ordinal(n) {
    const suffix = { one: "st", two: "nd", few: "rd", other: "th" }[ordinals.select(n)];
    return `${n}${suffix}`;
  }

  function cardWords(race) {
    const at = race.cards.findIndex((c) => c.index === race.next);
    return at < 0 ? "" : `Card ${at + 1} of ${race.cards.length}: ${race.cards[at].problem}`;
  }

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
    command("create_room", { name, deck, listed: el.createListed.checked }, {
      errorNode: el.createError,
      button: el.createForm.querySelector("button[type=submit]"),
      onOk: (reply) => {
        adoptAckRoom(reply.room);
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
    const own = state.pendingRoom;
    if (state.roomUpdates) {
      // roomupdated is the truth; the list only covers a moment without it.
      if (own && !sameId(own.id, state.leftRoomId)) return own;
      return listed && !sameId(listed.id, state.leftRoomId) ? listed : null;
    }
    if (listed && !sameId(listed.id, state.leftRoomId)) return listed;
    if (!listed && own) return own;
    return null;
  }

  /* ---------- rendering ---------- */

  function focusView() {
    // Into a room where we race right now (a late join, a return): the answer field.
    const race = state.race;
    if (state.view === "room" && race && race.isPlayer && race.next !== null && !el.answerForm.hidden) {
      el.answerInput.focus();
      return;
    }
    const heading = state.view && el.headings[state.view];
    if (heading) heading.focus();
  }

  function render() {
    let view = "signin";
    const room = state.me ? currentRoom() : null;
    if (state.me) view = room ? "room" : "lobby";
    forgetOtherRooms(room);
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

  // A race or its results belong to one room. They are forgotten when we leave it
  // (forgetRace) or sit in another; not merely because no room is known for a
  // moment: a late joiner's racestate may arrive before the join_room ack.
  function forgetOtherRooms(room) {
    const elsewhere = (thing) => thing && room && !sameId(thing.roomId, room.id);
    if (elsewhere(state.race) || elsewhere(state.results)) forgetRace();
  }

  function forgetRace() {
    stopTicker();
    state.race = null;
    state.results = null;
    state.allAnswers = null;
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
    // The feed filters on the server; full lists (a server without it) are searched here.
    const search = el.roomSearch.value.trim();
    const needle = search.toLowerCase();
    const rooms = state.feed.fallback && needle
      ? state.rooms.filter((room) => String(room.name).toLowerCase().includes(needle))
      : state.rooms;
    el.roomsEmpty.hidden = rooms.length > 0;
    el.roomsEmpty.textContent = search
      ? `No open room’s name contains “${search}”.`
      : "No rooms yet. Create one, or wait for your teacher.";
    const newest = state.feed.watching && rooms.length >= ROOM_LIMIT ? " newest" : "";
    el.roomCount.textContent = rooms.length ? `(${rooms.length}${newest})` : "";

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
    const extra = [STATE_SHORT[room.state], room.locked === true ? "Locked" : ""].filter(Boolean);
    li.querySelector(".room-meta").textContent =
      `Host: ${displayName(room.host)} · Deck: ${deck.name || "—"}${cards} · ${players} / ${capacity} players` +
      extra.map((words) => ` · ${words}`).join("");
    li.dataset.players = String(players);
    li.dataset.state = typeof room.state === "string" ? room.state : "";
    li.dataset.locked = String(room.locked === true);
    const button = li.querySelector("button");
    const full = Number.isInteger(room.max_players) && players >= room.max_players;
    const locked = room.locked === true;
    const label = locked ? `Room ${room.name} is locked` : full ? `Room ${room.name} is full` : `Join room ${room.name}`;
    button.setAttribute("aria-label", label);
    button.textContent = locked ? "Locked" : full ? "Full" : "Join";
    if (button.getAttribute("aria-busy") !== "true") button.disabled = full || locked;
  }

  const STATE_WORDS = {
    waiting: "Not started",
    countdown: "Counting down",
    racing: "Racing",
    finished: "Finished",
  };
  // In the lobby list only what differs from a fresh room.
  const STATE_SHORT = { countdown: "Starting", racing: "Racing", finished: "Race over" };

  function renderRoom(room) {
    const hosting = isHost(room);
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
    const phase = typeof room.state === "string" ? room.state : "waiting";
    el.roomState.textContent = `${STATE_WORDS[phase] || phase}${room.locked === true ? " · room locked" : ""}`;
    const code = typeof room.code === "string" ? room.code : "";
    el.roomCodeBox.hidden = !code;
    el.roomCodeBox.dataset.size = hosting ? "big" : "small"; // big for the host to read out or project
    if (el.roomCode.textContent !== code) {
      el.roomCode.textContent = code;
      el.copyStatus.textContent = "";
    }
    el.roomHint.textContent = hosting
      ? `Students join with the code${code ? ` ${code}` : ""} in their lobby. Closing the room sends everyone back to the lobby.`
      : phase === "waiting"
        ? "Waiting for the host to start the race."
        : phase === "finished"
          ? "The race is over."
          : "A race is running.";

    el.lockControl.hidden = !hosting;
    el.lockHint.hidden = !hosting;
    el.lockRoom.checked = state.lockWanted === null ? room.locked === true : state.lockWanted;

    el.playersEmpty.hidden = players.length > 0;
    renderPlayers(room, players, hosting);
    renderRace(room, hosting);
    renderResults(room, hosting);
    renderSetup(room, hosting);
    const split = !el.racePanel.hidden || !el.resultsPanel.hidden || !el.setupPanel.hidden;
    el.roomGrid.dataset.layout = split ? "split" : "single";
  }

  // Keyed, in place: a focused "Remove" button keeps its focus while others come and go.
  function renderPlayers(room, players, hosting) {
    const existing = new Map();
    for (const li of el.playerList.children) existing.set(li.dataset.userId, li);
    const keep = new Set();
    players.forEach((player, index) => {
      const key = String(player.id);
      keep.add(key);
      let li = existing.get(key);
      const signature = JSON.stringify([displayName(player), roleWords(player), isMe(player.id), hosting, player.connected]);
      if (!li || li.dataset.signature !== signature) {
        const fresh = document.createElement("li");
        fresh.dataset.testid = "player";
        fresh.dataset.userId = key;
        fresh.dataset.signature = signature;
        fresh.textContent = displayName(player);
        const role = roleWords(player);
        if (role) fresh.append(badge(role));
        if (isMe(player.id)) fresh.append(badge("you"));
        if (player.connected === false) fresh.append(badge("offline"));
        if (hosting) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "kick";
          button.dataset.testid = "kick";
          button.textContent = "Remove";
          button.setAttribute("aria-label", `Remove ${displayName(player)} from the room`);
          button.addEventListener("click", () => {
            const now = currentRoom();
            if (now) kick(now, player, button);
          });
          fresh.append(button);
        }
        if (li) li.replaceWith(fresh);
        li = fresh;
      }
      if (el.playerList.children[index] !== li) el.playerList.insertBefore(li, el.playerList.children[index] || null);
    });
    for (const [key, li] of existing) {
      if (!keep.has(key)) li.remove();
    }
  }

  function renderRace(room, hosting) {
    const race = state.race && sameId(state.race.roomId, room.id) ? state.race : null;
    el.racePanel.hidden = !race;
    if (!race) return;
    el.racePanel.dataset.raceId = String(race.raceId);
    el.racePanel.dataset.startAt = String(race.startAt);
    el.racePanel.dataset.phase = race.started ? "racing" : "countdown";
    el.countdown.hidden = race.started;
    const playing = race.isPlayer && race.next !== null;
    el.answerForm.hidden = !playing;
    if (playing) {
      const at = race.cards.findIndex((c) => c.index === race.next);
      const card = race.cards[at];
      el.answerForm.dataset.card = String(race.next);
      el.cardCount.textContent = race.started ? `Card ${at + 1} of ${race.cards.length}` : `${race.cards.length} cards`;
      el.problem.textContent = race.started && card ? String(card.problem) : "Your first card appears here at the start.";
      el.problem.classList.toggle("waiting", !race.started);
      el.answerInput.readOnly = !race.started || race.pending;
    }
    const feedback = race.feedback;
    el.answerFeedback.dataset.result = feedback ? feedback.kind : "";
    el.answerFeedback.textContent = feedback ? feedback.text : "";
    el.raceDone.hidden = !(race.isPlayer && race.next === null);
    el.raceDone.textContent = "You answered every card. Waiting for the others…";
    el.endRace.hidden = !hosting;
    renderLanes();
  }

  function renderLanes() {
    const race = state.race;
    if (!race) return;
    const total = race.cards.length || 1;
    const existing = new Map();
    for (const li of el.lanes.children) existing.set(li.dataset.userId, li);
    const keep = new Set();
    race.players.forEach((player, index) => {
      const key = String(player.id);
      keep.add(key);
      let li = existing.get(key);
      if (!li) li = createLane(key);
      const p = race.progress.get(key) || { answered: 0, correct: 0, done: false, time_ms: null, connected: true };
      const answered = Number(p.answered) || 0;
      const correct = Number(p.correct) || 0;
      li.dataset.answered = String(answered);
      li.dataset.correct = String(correct);
      li.dataset.done = String(p.done === true);
      li.classList.toggle("is-me", isMe(player.id));
      li.querySelector(".lane-name").textContent = `${displayName(p.username !== undefined ? p : player)}${isMe(player.id) ? " (you)" : ""}`;
      const away = p.connected === false ? " · away" : "";
      const n = race.cards.length;
      li.querySelector(".lane-stats").textContent = p.done
        ? `Done: ${correct} of ${n} right · ${timeText(p.time_ms)}${away}`
        : `${answered} of ${n} · ${correct} right${away}`;
      li.querySelector(".lane-spoken").textContent = p.done
        ? `: done, ${correct} of ${n} right in ${timeText(p.time_ms)}${away ? ", away" : ""}`
        : `: ${answered} of ${n} answered, ${correct} right${away ? ", away" : ""}`;
      li.querySelector(".lane-right").style.width = `${(100 * correct) / total}%`;
      li.querySelector(".lane-wrong").style.width = `${(100 * (answered - correct)) / total}%`;
      if (el.lanes.children[index] !== li) el.lanes.insertBefore(li, el.lanes.children[index] || null);
    });
    for (const [key, li] of existing) {
      if (!keep.has(key)) li.remove();
    }
  }

  function createLane(key) {
    const li = document.createElement("li");
    li.className = "lane";
    li.dataset.testid = "lane";
    li.dataset.userId = key;
    const head = document.createElement("div");
    head.className = "lane-head";
    const name = document.createElement("span");
    name.className = "lane-name";
    name.dataset.testid = "lane-name";
    const stats = document.createElement("span");
    stats.className = "lane-stats";
    stats.dataset.testid = "lane-stats";
    stats.setAttribute("aria-hidden", "true"); // the words below say it for screen readers
    const spoken = document.createElement("span");
    spoken.className = "lane-spoken sr-only";
    head.append(name, stats, spoken);
    const track = document.createElement("div");
    track.className = "lane-track";
    track.setAttribute("aria-hidden", "true");
    const right = document.createElement("span");
    right.className = "lane-right";
    const wrong = document.createElement("span");
    wrong.className = "lane-wrong";
    track.append(right, wrong);
    li.append(head, track);
    return li;
  }

  function cell(tag, text, attrs = {}) {
    const node = document.createElement(tag);
    node.textContent = text;
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    return node;
  }

  // A given answer with its verdict: a mark for the eyes, a word for screen readers.
  function verdictCell(tag, given, correct, attrs = {}) {
    const node = cell(tag, "", attrs);
    if (correct === undefined) {
      node.textContent = "—";
      return node;
    }
    node.dataset.result = correct ? "right" : "wrong";
    node.append(
      cell("span", correct ? "✓\u00a0" : "✗\u00a0", { class: correct ? "mark right" : "mark wrong", "aria-hidden": "true" }),
      cell("span", String(given), { "data-testid": "given-text" }),
      cell("span", correct ? " (right)" : " (wrong)", { class: "sr-only" }),
    );
    return node;
  }

  // The tables are rebuilt only for new results (a list change re-renders the room,
  // and a teacher's table can hold 50 students × 1000 cards).
  const drawn = { results: null, matrix: null };

  function renderResults(room, hosting) {
    const results = state.race || !state.results || !sameId(state.results.roomId, room.id) ? null : state.results;
    el.resultsPanel.hidden = !results;
    if (!results) return;
    el.allAnswers.hidden = !hosting;
    if (hosting) renderMatrix(state.allAnswers);
    el.rematch.hidden = !hosting;
    el.rematchHint.hidden = hosting;
    if (drawn.results === results) return;
    drawn.results = results;
    el.resultsPanel.dataset.raceId = String(results.raceId);
    el.resultsReason.textContent = RACE_END_TEXT[results.reason] || "The race is over.";
    const total = results.cards.length;
    el.ranking.replaceChildren(
      ...results.ranking.map((r) => {
        const tr = document.createElement("tr");
        tr.dataset.testid = "ranking-row";
        tr.dataset.place = String(r.place);
        tr.dataset.userId = String(r.id);
        if (isMe(r.id)) tr.className = "is-me";
        const name = cell("td", displayName(r));
        if (isMe(r.id)) name.append(badge("you"));
        if (r.left) name.append(badge("left"));
        tr.append(
          cell("td", ordinal(r.place), { "data-testid": "place" }),
          name,
          cell("td", `${r.correct} of ${total}`),
          cell("td", r.answered > 0 ? timeText(r.time_ms) : "—"),
        );
        return tr;
      }),
    );

    const iRaced = results.ranking.some((r) => isMe(r.id));
    el.myAnswers.hidden = !iRaced;
    if (iRaced) {
      const given = new Map(results.mine.map((a) => [a.index, a]));
      el.myAnswersBody.replaceChildren(
        ...results.cards.map((card, position) => {
          const a = given.get(card.index);
          const tr = document.createElement("tr");
          tr.dataset.testid = "my-answer";
          tr.dataset.result = a ? (a.correct ? "right" : "wrong") : "none";
          const said = verdictCell("td", a && a.given, a ? a.correct === true : undefined, { "data-testid": "given" });
          tr.append(
            cell("td", String(position + 1)),
            cell("td", String(card.problem)),
            said,
            cell("td", String(card.answer), { "data-testid": "expected" }),
          );
          return tr;
        }),
      );
    }
  }

  function renderMatrix(all) {
    el.downloadCsv.disabled = !all;
    el.allAnswersStatus.textContent = all ? "One row per student: what they typed for each card." : "Loading every student’s answers…";
    if (drawn.matrix === all) return;
    drawn.matrix = all;
    if (!all) {
      el.matrix.tHead.replaceChildren();
      el.matrix.tBodies[0].replaceChildren();
      return;
    }
    const cards = Array.isArray(all.cards) ? all.cards : [];
    const head = document.createElement("tr");
    head.append(cell("th", "Student", { scope: "col" }));
    cards.forEach((card, position) => {
      const th = cell("th", `${position + 1}. ${card.problem}`, { scope: "col" });
      th.append(cell("span", ` = ${card.answer}`, { class: "expected" }));
      head.append(th);
    });
    el.matrix.tHead.replaceChildren(head);
    const ranking = Array.isArray(all.ranking) ? all.ranking : [];
    const students = orderedByRanking(Array.isArray(all.answers) ? all.answers : [], ranking);
    el.matrix.tBodies[0].replaceChildren(
      ...students.map((student) => {
        const tr = document.createElement("tr");
        tr.dataset.testid = "student-answers";
        tr.dataset.userId = String(student.id);
        tr.append(cell("th", displayName(student), { scope: "row" }));
        const given = new Map((Array.isArray(student.mine) ? student.mine : []).map((a) => [a.index, a]));
        for (const card of cards) {
          const a = given.get(card.index);
          tr.append(verdictCell("td", a && a.given, a ? a.correct === true : undefined));
        }
        return tr;
      }),
    );
  }

  function renderSetup(room, hosting) {
    const phase = typeof room.state === "string" ? room.state : "waiting";
    const show = hosting && el.racePanel.hidden && phase !== "countdown" && phase !== "racing";
    el.setupPanel.hidden = !show;
    if (!show) return;
    const rematch = !el.resultsPanel.hidden;
    el.setupHeading.textContent = rematch ? "Options for the rematch" : "Start a race";
    el.startRace.hidden = rematch;
  }

  function badge(text) {
    const span = document.createElement("span");
    span.className = "badge";
    span.textContent = text;
    return span;
  }

  setConnection(state.rejoining ? "reconnecting" : "connecting");
  syncSource();
  render();
})();
