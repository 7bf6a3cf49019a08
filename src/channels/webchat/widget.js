/* braid web chat widget: dependency-free, embedded with one tag:
 *   <script src="https://chat.example.com/widget.js" data-title="Chat with us" async></script>
 * data-title, data-greeting, data-color (#rrggbb), data-position (right|left), data-open (true),
 * data-transport (poll: skip the WebSocket; also ?braid_transport=poll in the page address),
 * data-user-email + data-user-hash (the site's logged-in user, signed by the site's server:
 * hex HMAC-SHA256 of the email with the braid identity secret; only a signed email joins the
 * visitor to that customer's history, an email typed in the widget is only a claim).
 * Everything from the network or the visitor is shown with textContent, never as HTML. */
(function () {
  "use strict";
  if (window.__braidChat) return;
  window.__braidChat = true;

  var script = document.currentScript;
  if (!script) {
    var all = document.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(all[i].src)) { script = all[i]; break; }
    }
  }
  if (!script || !script.src) return;
  var base = new URL(script.src, location.href);
  var origin = base.origin;
  var wsUrl = (base.protocol === "https:" ? "wss:" : "ws:") + "//" + base.host + "/ws";
  var d = script.dataset || {};
  var title = d.title || "Chat with us";
  var greeting = d.greeting || "Hi! Ask us anything, we usually answer within minutes.";
  var color = /^#[0-9a-fA-F]{3,8}$/.test(d.color || "") ? d.color : "#2b6cb0";
  var left = d.position === "left";
  // Long-poll instead of the WebSocket: data-transport="poll", or ?braid_transport=poll in the
  // page's address (to try the fallback without editing the page).
  var forcePoll = d.transport === "poll" || /[?&]braid_transport=poll(&|$)/.test(location.search);
  // The site's signed user (both or neither); braid checks the signature.
  var user = d.userEmail && d.userHash ? { user_email: d.userEmail, user_hash: d.userHash } : null;
  function withUser(o) {
    if (user) { o.user_email = user.user_email; o.user_hash = user.user_hash; }
    return o;
  }

  // ---- storage (per braid server) ----
  var KEY = "braid-chat:" + origin + ":";
  function load(k, dflt) {
    try { var v = JSON.parse(localStorage.getItem(KEY + k)); return v === null ? dflt : v; }
    catch (e) { return dflt; }
  }
  function save(k, v) { try { localStorage.setItem(KEY + k, JSON.stringify(v)); } catch (e) {} }
  var token = load("visitor", null);
  var history = load("history", []);   // [{id, from, author, text, at, state}]
  var emailGiven = load("email", null);
  var askEmail = false;
  var open = d.open === "true" || load("open", false);

  function rid() {
    var b = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(b);
    var s = "c";
    for (var j = 0; j < b.length; j++) s += ("0" + b[j].toString(16)).slice(-2);
    return s;
  }

  // ---- DOM ----
  function el(tag, css, text) {
    var e = document.createElement(tag);
    if (css) e.style.cssText = css;
    if (text) e.textContent = text;
    return e;
  }
  var font = "font:14px/1.4 -apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;";
  var side = left ? "left:20px;" : "right:20px;";
  var root = el("div", "all:initial;position:fixed;bottom:20px;" + side + "z-index:2147483000;" + font);
  root.id = "braid-chat";
  var button = el("button", "all:initial;cursor:pointer;background:" + color + ";color:#fff;border-radius:24px;padding:12px 18px;box-shadow:0 2px 8px rgba(0,0,0,.25);" + font + "font-weight:600;", title);
  button.id = "braid-chat-button";
  button.type = "button";
  var panel = el("div", "display:none;flex-direction:column;width:340px;max-width:calc(100vw - 40px);height:460px;max-height:calc(100vh - 40px);background:#fff;color:#222;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.25);overflow:hidden;" + font);
  panel.id = "braid-chat-panel";
  var head = el("div", "display:flex;align-items:center;justify-content:space-between;background:" + color + ";color:#fff;padding:10px 14px;font-weight:600;");
  var headTitle = el("span", "", title);
  var closeBtn = el("button", "all:initial;cursor:pointer;color:#fff;font-size:20px;line-height:1;padding:0 4px;", "\u00d7");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", "Close chat");
  head.appendChild(headTitle);
  head.appendChild(closeBtn);
  var list = el("div", "flex:1;overflow-y:auto;padding:10px 12px;background:#f6f7f9;");
  list.id = "braid-chat-messages";
  list.setAttribute("aria-live", "polite");
  var status = el("div", "font-size:12px;color:#777;padding:2px 12px;min-height:16px;");
  status.id = "braid-chat-status";
  var emailRow = el("div", "display:none;padding:6px 12px 0;");
  var email = el("input", "box-sizing:border-box;width:100%;padding:6px 8px;border:1px solid #ccc;border-radius:6px;" + font);
  email.id = "braid-chat-email";
  email.type = "email";
  email.placeholder = "Your email (optional, so we can follow up)";
  email.autocomplete = "email";
  emailRow.appendChild(email);
  var form = el("form", "display:flex;gap:6px;padding:8px 12px 12px;margin:0;");
  var input = el("textarea", "flex:1;box-sizing:border-box;resize:none;height:40px;padding:8px;border:1px solid #ccc;border-radius:6px;" + font);
  input.id = "braid-chat-input";
  input.placeholder = "Type a message\u2026";
  input.rows = 1;
  var send = el("button", "cursor:pointer;border:0;border-radius:6px;background:" + color + ";color:#fff;padding:0 14px;font-weight:600;" + font, "Send");
  send.id = "braid-chat-send";
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(list);
  panel.appendChild(status);
  panel.appendChild(emailRow);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(button);

  function show(o) {
    open = o;
    save("open", o);
    panel.style.display = o ? "flex" : "none";
    button.style.display = o ? "none" : "inline-block";
    if (o) { list.scrollTop = list.scrollHeight; input.focus(); }
  }
  button.addEventListener("click", function () { show(true); });
  closeBtn.addEventListener("click", function () { show(false); });

  function bubble(m) {
    var mine = m.from === "visitor";
    var wrap = el("div", "display:flex;margin:6px 0;justify-content:" + (mine ? "flex-end" : "flex-start") + ";");
    wrap.className = "braid-msg braid-" + (mine ? "visitor" : "agent");
    wrap.setAttribute("data-id", m.id);
    var b = el("div", "max-width:80%;padding:7px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word;" +
      (mine ? "background:" + color + ";color:#fff;" : "background:#fff;color:#222;border:1px solid #e2e4e8;"));
    if (!mine && m.author) b.appendChild(el("div", "font-size:11px;color:#888;margin-bottom:2px;", m.author));
    var t = el("div", "", m.text);
    t.className = "braid-text";
    b.appendChild(t);
    if (!mine && m.csat) b.appendChild(survey(m));
    if (m.state === "sending") b.appendChild(el("div", "font-size:11px;opacity:.7;", "sending\u2026"));
    if (m.state === "failed") b.appendChild(el("div", "font-size:11px;opacity:.9;", "not sent: " + (m.error || "error")));
    wrap.appendChild(b);
    return wrap;
  }
  // A satisfaction survey: 1-5 buttons and a comment box under the question; a tap sends the
  // score with the comment (the first answer is the one kept).
  function survey(m) {
    var box = el("div", "margin-top:6px;");
    box.className = "braid-csat";
    if (m.csatState === "done") {
      box.appendChild(el("div", "font-size:12px;color:#555;", "Thank you for your feedback!"));
      return box;
    }
    var row = el("div", "display:flex;gap:4px;margin-bottom:4px;");
    var note = el("textarea", "box-sizing:border-box;width:100%;height:36px;resize:none;padding:4px 6px;border:1px solid #ccc;border-radius:6px;" + font);
    note.className = "braid-csat-comment";
    note.placeholder = "A comment (optional)";
    note.maxLength = 1000;
    note.value = m.csatDraft || "";
    note.addEventListener("input", function () { m.csatDraft = note.value; remember(); });
    for (var s = 1; s <= 5; s++) (function (score) {
      var bt = el("button", "cursor:pointer;border:1px solid " + color + ";background:#fff;color:" + color + ";border-radius:6px;padding:4px 10px;font-weight:600;" + font, String(score));
      bt.type = "button";
      bt.className = "braid-csat-score";
      bt.setAttribute("data-score", String(score));
      bt.disabled = m.csatState === "sending";
      bt.addEventListener("click", function () { answer(m, score, note.value); });
      row.appendChild(bt);
    })(s);
    box.appendChild(row);
    box.appendChild(note);
    if (m.csatState === "sending") box.appendChild(el("div", "font-size:11px;opacity:.7;", "sending\u2026"));
    return box;
  }
  function answer(m, score, comment) {
    m.csatState = "sending";
    m.csatAnswer = { id: rid(), score: score, comment: String(comment || "").replace(/^\s+|\s+$/g, "") };
    remember();
    render();
    if (ready) transmitCsat(m); else setStatus("Connecting\u2026");
  }
  function findSurvey(id) {
    for (var k = 0; k < history.length; k++) {
      var a = history[k].csatAnswer;
      if (a && a.id === id) return history[k];
    }
    return null;
  }
  function render() {
    while (list.firstChild) list.removeChild(list.firstChild);
    list.appendChild(bubble({ id: "greeting", from: "agent", text: greeting }));
    for (var k = 0; k < history.length; k++) list.appendChild(bubble(history[k]));
    list.scrollTop = list.scrollHeight;
    emailRow.style.display = askEmail && !emailGiven && !user ? "block" : "none";
  }
  function remember() {
    if (history.length > 200) history = history.slice(history.length - 200);
    save("history", history);
  }
  function find(id) {
    for (var k = 0; k < history.length; k++) if (history[k].id === id) return history[k];
    return null;
  }
  function setStatus(t) { status.textContent = t || ""; }

  // ---- transport ----
  var ws = null, ready = false, usePoll = forcePoll || !window.WebSocket;
  var failures = 0, opened = false, retryTimer = null, polling = false;

  function post(path, body) {
    return fetch(origin + path, {
      method: "POST", mode: "cors", credentials: "omit",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }

  function connect() {
    retryTimer = null;
    ready = false;
    if (usePoll) return pollHello();
    opened = false;
    try { ws = new WebSocket(wsUrl); } catch (e) { return lost(); }
    ws.onopen = function () {
      opened = true;
      ws.send(JSON.stringify(withUser({ type: "hello", visitor: token })));
    };
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      handle(f);
    };
    ws.onclose = function (ev) {
      ws = null;
      ready = false;
      if (ev.code === 4001) { return; } // bad visitor: handle() already started over
      if (!opened && ++failures >= 2) usePoll = true; // WebSocket blocked: long-poll instead
      lost();
    };
  }
  function lost() {
    ready = false;
    setStatus("Reconnecting\u2026");
    if (!retryTimer) {
      var delay = Math.min(15000, 1000 * Math.pow(2, Math.min(failures, 4)));
      retryTimer = setTimeout(connect, delay);
    }
  }
  function startOver() {
    token = null;
    save("visitor", null);
    if (ws) { try { ws.close(); } catch (e) {} }
    ws = null;
    ready = false;
    if (!retryTimer) retryTimer = setTimeout(connect, 200);
  }

  function pollHello() {
    post("/lp/hello", withUser({ visitor: token })).then(function (f) {
      if (f.type !== "welcome") { handle(f); return lost(); }
      handle(f);
      if (!polling) pollLoop();
    }).catch(function () { failures++; lost(); });
  }
  function pollLoop() {
    if (!token) { polling = false; return; }
    polling = true;
    post("/lp/poll", { visitor: token }).then(function (r) {
      if (r.type === "error") { polling = false; handle(r); return; }
      for (var k = 0; k < (r.frames || []).length; k++) handle(r.frames[k]);
      // Another tab (or this page before a reload) polls for this visitor now: one pending
      // poll per visitor, so wait before taking over.
      if (r.superseded) { setTimeout(pollLoop, 5000); return; }
      pollLoop();
    }).catch(function () { polling = false; failures++; lost(); });
  }

  function transmit(m) {
    var frame = { type: "msg", id: m.id, text: m.text };
    if (m.email) frame.email = m.email;
    if (usePoll) {
      frame.visitor = token;
      delete frame.type;
      withUser(frame);
      post("/lp/send", frame).then(handle).catch(function () { lost(); });
    } else if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify(frame));
    }
  }
  function transmitCsat(m) {
    var a = m.csatAnswer;
    var frame = { type: "csat", id: a.id, survey: m.csat, score: a.score };
    if (a.comment) frame.comment = a.comment;
    if (usePoll) {
      frame.visitor = token;
      delete frame.type;
      post("/lp/csat", frame).then(handle).catch(function () { lost(); });
    } else if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify(frame));
    }
  }
  function flush() {
    for (var k = 0; k < history.length; k++) {
      if (history[k].state === "sending") transmit(history[k]);
      if (history[k].csatState === "sending") transmitCsat(history[k]);
    }
  }

  function handle(f) {
    if (!f || typeof f.type !== "string") return;
    if (f.type === "welcome") {
      token = f.visitor;
      save("visitor", token);
      askEmail = !!f.ask_email;
      ready = true;
      failures = 0;
      setStatus("");
      render();
      flush();
    } else if (f.type === "ack" && findSurvey(f.id)) {
      findSurvey(f.id).csatState = "done";
      remember();
      render();
    } else if (f.type === "ack") {
      var m = find(f.id);
      if (m) {
        m.state = "sent";
        if (m.email) { emailGiven = m.email; save("email", emailGiven); delete m.email; }
        remember();
        render();
      }
    } else if (f.type === "msg") {
      // A message is shown once: a reply sent again (after a crash, a reconnect) carries the
      // id it had, and one without an id cannot be told apart from a resend.
      if (typeof f.id !== "string" || !f.id || find(f.id)) return;
      history.push({ id: f.id, from: f.from === "visitor" ? "visitor" : "agent", author: f.author || "",
        text: String(f.text || ""), at: f.at, state: "sent",
        csat: typeof f.csat === "number" ? f.csat : null });
      remember();
      render();
      if (f.from === "agent" && !open) button.textContent = title + " \u2022 new message";
    } else if (f.type === "error" && f.id && findSurvey(f.id)) {
      var sv = findSurvey(f.id);
      if (f.code === "rate_limited" || f.code === "unavailable") {
        setTimeout(function () { if (sv.csatState === "sending") transmitCsat(sv); }, f.retry_after_ms || 3000);
        return;
      }
      // Closed or refused: the buttons go; the reason shows in the status line.
      sv.csatState = f.code === "csat_closed" ? "done" : null;
      remember();
      render();
      setStatus(f.message || "Something went wrong");
    } else if (f.type === "error") {
      var target = f.id ? find(f.id) : null;
      if (f.code === "bad_visitor") { setStatus("Starting a new chat\u2026"); startOver(); return; }
      if (f.code === "rate_limited" && target) {
        setStatus("You are sending messages quickly; sending in a moment\u2026");
        setTimeout(function () { if (target.state === "sending") transmit(target); }, f.retry_after_ms || 3000);
        return;
      }
      if (f.code === "unavailable" && target) {
        setStatus("Could not send; retrying\u2026");
        setTimeout(function () { if (target.state === "sending") transmit(target); }, 3000);
        return;
      }
      if (target) {
        target.state = "failed";
        target.error = f.message;
        if (f.code === "bad_email") { emailGiven = null; save("email", null); }
        remember();
        render();
      }
      setStatus(f.message || "Something went wrong");
    }
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.replace(/^\s+|\s+$/g, "");
    if (!text) return;
    var m = { id: rid(), from: "visitor", author: "", text: text, at: Date.now(), state: "sending" };
    var e = email.value.replace(/^\s+|\s+$/g, "");
    if (askEmail && !emailGiven && !user && e) m.email = e;
    history.push(m);
    remember();
    input.value = "";
    render();
    if (ready) transmit(m); else setStatus("Connecting\u2026");
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      if (form.requestSubmit) form.requestSubmit(); else send.click();
    }
  });

  function mount() {
    document.body.appendChild(root);
    render();
    show(open);
    connect();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
