/* Card sign-in page (protocol jpki-auth:1, docs/card-bridge-protocol.md).
 *
 * With the card bridge on this computer: find the bridge (GET /v1/status), wait for the card,
 * ask the provider for a challenge, let the bridge sign it (the PIN is typed in the bridge's
 * own window, never here), post the token to the provider and follow its redirect.
 * Without a reader (tablet): ask the provider for a pairing code, show it, and poll until a
 * computer with a reader has finished (`card-bridge pair CODE`).
 *
 * Every sentence shown comes from the page (data-msg-* on #card-messages), so it is
 * translated with the page; the provider's own error_description is the fallback.
 */
(function () {
  "use strict";

  var root = document.getElementById("card-login");
  if (!root) { return; }
  var cfg = root.dataset;
  var messages = document.getElementById("card-messages").dataset;
  var startButton = document.getElementById("card-start");
  var statusLine = document.getElementById("card-status");
  var errorBox = document.getElementById("card-error");
  var errorText = document.getElementById("card-error-text");
  var installHelp = document.getElementById("card-install-help");
  var progress = document.getElementById("card-progress");
  var steps = Array.prototype.slice.call(document.querySelectorAll("#card-steps li"));

  var STEP = { bridge: 0, card: 1, pin: 2, check: 3, done: 4 };
  var BRIDGE_TIMEOUT_MS = 3000;
  var CARD_WAIT_MS = 120000;
  var PAIR_POLL_MS = 1500;

  // data-msg-wrong-pin → messages.msgWrongPin
  function msg(code, fallback) {
    var key = "msg" + code.split(/[_-]/).map(function (part) {
      return part.charAt(0).toUpperCase() + part.slice(1);
    }).join("");
    return messages[key] || fallback || messages.msgCardFailure;
  }

  function showStep(step) {
    progress.value = step;
    steps.forEach(function (li) {
      var n = Number(li.dataset.step);
      li.classList.toggle("done", n < step || step === STEP.done);
      li.classList.toggle("current", n === step && step !== STEP.done);
      if (n === step) { li.setAttribute("aria-current", "step"); } else { li.removeAttribute("aria-current"); }
    });
    root.dataset.step = String(step);
  }

  // A sentence with furigana: the page's Japanese marks hard kanji as
  // <ruby>漢字<rt>かんじ</rt></ruby>. Built as DOM nodes (no HTML parsing), so nothing in a
  // message, the provider's or the bridge's included, can become markup but a reading.
  var RUBY = /<ruby>([^<]*)<rt>([^<]*)<\/rt><\/ruby>/g;
  function setText(element, text) {
    element.textContent = "";
    var at = 0, match;
    text = String(text || "");
    RUBY.lastIndex = 0;
    while ((match = RUBY.exec(text)) !== null) {
      element.appendChild(document.createTextNode(text.slice(at, match.index)));
      var ruby = document.createElement("ruby"), rt = document.createElement("rt");
      ruby.appendChild(document.createTextNode(match[1]));
      rt.textContent = match[2];
      ruby.appendChild(rt);
      element.appendChild(ruby);
      at = RUBY.lastIndex;
    }
    element.appendChild(document.createTextNode(text.slice(at)));
  }

  function say(text) { setText(statusLine, text); }

  var notice = document.getElementById("card-notice");
  var noticeText = document.getElementById("card-notice-text");
  var noticeContinue = document.getElementById("card-notice-continue");

  // Not an error: the first tap of a card not linked yet. The notice stays (no timer, no
  // redirect) until the child presses its button, which goes to the linking sign-in.
  function showNotice(code, text, target) {
    if (!notice) { fail(code, text); return; }  // a page without the notice (the admin's)
    setText(noticeText, text);
    if (target) { noticeContinue.href = target; }
    notice.hidden = false;
    root.dataset.notice = code;
    say("");
    startButton.disabled = false;
    noticeContinue.focus();
  }

  function clearError() {
    if (notice) { notice.hidden = true; }
    delete root.dataset.notice;
    errorBox.hidden = true;
    installHelp.hidden = true;
    errorText.textContent = "";
    delete root.dataset.error;
  }

  function fail(code, text) {
    setText(errorText, text);
    errorBox.hidden = false;
    installHelp.hidden = code !== "no_bridge";
    root.dataset.error = code;
    say("");
    startButton.disabled = false;
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function withTimeout(ms) {
    var controller = new AbortController();
    setTimeout(function () { controller.abort(); }, ms);
    return controller.signal;
  }

  function readJson(response) {
    return response.text().then(function (text) {
      var body = {};
      try { body = text ? JSON.parse(text) : {}; } catch (e) { body = {}; }
      return { ok: response.ok, status: response.status, body: body || {} };
    });
  }

  // ------------------------------------------------------------------ the provider
  function provider(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": cfg.csrf },
      body: JSON.stringify(body || {})
    }).then(readJson, function () { throw { code: "network" }; });
  }

  function providerError(answer) {
    var code = answer.body.error || "invalid_request";
    var known = messages[("msg-" + code).replace(/[_-](.)/g, function (m, c) { return c.toUpperCase(); })];
    return { code: code, text: known || answer.body.error_description || messages.msgNetwork,
             redirect: answer.body.redirect };
  }

  // The page came with its first challenge (idp.auth.card_views.card_page): the first try
  // uses it while at least three of its minutes are left for the PIN (a page loaded again
  // gets the same one, with less left); every later try, and a page brought back from the
  // browser's history, asks anew.
  var loadedAt = Date.now();
  var PIN_TIME_MS = 180000;
  var firstChallengeUsableMs = (Number(cfg.challengeExpiresIn) || 300) * 1000 - PIN_TIME_MS;
  var firstChallenge = cfg.challenge ? { challenge: cfg.challenge, origin: cfg.challengeOrigin } : null;
  if (firstChallenge && cfg.challengeApp) { firstChallenge.app = cfg.challengeApp; }
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { firstChallenge = null; }
  });

  function challenge() {
    var first = firstChallenge;
    firstChallenge = null;  // one try only, whatever happens next
    if (first && Date.now() - loadedAt < firstChallengeUsableMs) {
      return Promise.resolve({ ok: true, status: 200, body: first });
    }
    return provider(cfg.challengeUrl);
  }

  // ------------------------------------------------------------------ the bridge
  function bridgeStatus() {
    return fetch(cfg.bridgeUrl + "/v1/status", { cache: "no-store", signal: withTimeout(BRIDGE_TIMEOUT_MS) })
      .then(readJson, function () { throw { code: "no_bridge" }; })
      .then(function (answer) {
        if (!answer.ok) { throw { code: "no_bridge" }; }
        return answer.body;
      });
  }

  function bridgeError(answer) {
    var body = answer.body, code = body.error || "card_failure";
    if (code === "wrong_pin") {
      var tries = Number(body.tries_left);
      var text = tries === 1 ? messages.msgWrongPinLast : messages.msgWrongPin.replace("{tries}", String(tries));
      return { code: code, text: text, tries: tries };
    }
    if (code === "forbidden_origin" || code === "forbidden_host" || code === "origin_mismatch") {
      return { code: "no_bridge", text: messages.msgNoBridge };
    }
    return { code: code, text: msg(code, body.error_description_ja || body.error_description) };
  }

  function waitForCard(status) {
    if (status.pcsc !== "ok" || !status.reader) { return Promise.reject({ code: "no_reader" }); }
    if (status.card) { return Promise.resolve(); }
    showStep(STEP.card);
    say(messages.msgPutCard);
    var deadline = Date.now() + CARD_WAIT_MS;
    function poll() {
      return sleep(1000).then(bridgeStatus).then(function (next) {
        if (next.pcsc !== "ok" || !next.reader) { throw { code: "no_reader" }; }
        if (next.card) { return; }
        if (Date.now() > deadline) { throw { code: "no_card" }; }
        return poll();
      });
    }
    return poll();
  }

  function signIn() {
    clearError();
    startButton.disabled = true;
    showStep(STEP.bridge);
    say(messages.msgLooking);
    bridgeStatus()
      .then(waitForCard)
      .then(challenge)
      .then(function (answer) {
        if (!answer.ok) { throw providerError(answer); }
        showStep(STEP.pin);
        say(messages.msgPin);
        var ask = { challenge: answer.body.challenge, origin: answer.body.origin };
        // The app's name, for the bridge's PIN window only: it is not signed, and the bridge
        // shows it beside the origin it checked. Absent for the provider's own pages.
        if (typeof answer.body.app === "string") { ask.app = answer.body.app; }
        return fetch(cfg.bridgeUrl + "/v1/authenticate", {
          method: "POST", cache: "no-store",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(ask)
        }).then(readJson, function () { throw { code: "no_bridge" }; });
      })
      .then(function (answer) {
        if (!answer.ok) { throw bridgeError(answer); }
        showStep(STEP.check);
        say(messages.msgChecking);
        return provider(cfg.verifyUrl, answer.body);
      })
      .then(function (answer) {
        if (!answer.ok || !answer.body.redirect) { throw providerError(answer); }
        finish(answer.body.redirect, messages.msgDone);
      })
      .catch(function (problem) {
        problem = problem || {};
        var code = problem.code || "card_failure";
        var text = problem.text || msg(code);
        if (code === "card_not_linked" && problem.redirect) {
          showNotice(code, messages.msgCardNotLinked, problem.redirect);
          return;
        }
        fail(code, text);
        if (code === "no_bridge") { showStep(STEP.bridge); }
      });
  }

  function finish(target, text) {
    showStep(STEP.done);
    say(text);
    root.dataset.done = "true";
    window.location.assign(target);
  }

  startButton.addEventListener("click", signIn);

  // ------------------------------------------------------------------ tablet pairing
  var pairButton = document.getElementById("card-pair-start");
  var pairBox = document.getElementById("card-pair-box");
  var pairCode = document.getElementById("card-pair-code");
  var pairCommandCode = document.getElementById("card-pair-command-code");
  var pairQr = document.getElementById("card-pair-qr");
  var pairStatus = document.getElementById("card-pair-status");
  var pairing = 0;  // bumps on every new code: an old poll loop stops

  function pairFail(code, text) {
    pairStatus.textContent = "";
    pairBox.dataset.state = "error";
    fail(code, text);
    pairButton.disabled = false;
  }

  function pollPairing(generation, statusUrl, deadline) {
    if (generation !== pairing) { return; }
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store",
                       headers: { "Accept": "application/json" } })
      .then(readJson, function () { return { ok: false, status: 0, body: { state: "waiting" } }; })
      .then(function (answer) {
        if (generation !== pairing) { return; }
        var body = answer.body;
        if (body.state === "done" && body.redirect) {
          pairBox.dataset.state = "done";
          setText(pairStatus, messages.msgPairDone);  // it carries furigana
          finish(body.redirect, messages.msgPairDone);
          return;
        }
        if (body.state === "error" || (answer.status >= 400 && answer.status !== 0)) {
          var code = body.error || "pairing_expired";
          if (code === "card_not_linked" && body.redirect) {
            pairStatus.textContent = "";
            pairBox.dataset.state = "not-linked";
            pairButton.disabled = false;
            showNotice(code, messages.msgCardNotLinked, body.redirect);
            return;
          }
          if (code === "pairing_expired" || code === "pairing_not_found") {
            pairFail(code, messages.msgPairExpired);
            return;
          }
          pairFail(code, providerError(answer).text);
          return;
        }
        var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
        setText(pairStatus, messages.msgPairWaiting.replace("{seconds}", String(left)));
        setTimeout(function () { pollPairing(generation, statusUrl, deadline); }, PAIR_POLL_MS);
      });
  }

  function startPairing() {
    clearError();
    pairButton.disabled = true;
    var generation = ++pairing;
    provider(cfg.pairUrl).then(function (answer) {
      if (!answer.ok) { throw providerError(answer); }
      var body = answer.body;
      pairCode.textContent = body.code;
      pairCommandCode.textContent = body.code;
      if (body.qr_svg) {
        pairQr.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(body.qr_svg);
        pairQr.hidden = false;
      } else {
        pairQr.hidden = true;
      }
      pairBox.hidden = false;
      pairBox.dataset.state = "waiting";
      pairButton.disabled = false;
      pollPairing(generation, body.status_url, Date.now() + body.expires_in * 1000);
    }).catch(function (problem) {
      problem = problem || {};
      pairFail(problem.code || "network", problem.text || messages.msgNetwork);
    });
  }

  if (pairButton) { pairButton.addEventListener("click", startPairing); }
})();
