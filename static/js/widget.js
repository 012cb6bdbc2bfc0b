/*! Darklaunch "What's new" widget.
 * Embed on any site:  <script src="https://YOUR-DARKLAUNCH/widget.js" defer></script>
 * Optional attributes on the script tag:
 *   data-target="#selector"   render the button inside that element instead of floating
 *   data-position="left"      float at the bottom left instead of the bottom right
 *   data-label="Updates"      the button's text (default "What's new")
 *   data-context='{"userId":"42","properties":{"country":"NO"}}'
 *   data-context-signature="hex HMAC-SHA256 of that exact text"
 *                             the signed-in user, signed by your backend with the reader-context
 *                             key: entries whose linked flag is on for this user show too
 *                             (see docs/changelog.md, "Reader context"); unsigned context is
 *                             ignored by the server
 * It reads /changelog/widget.json from the same server (CORS), keeps the last entry you read
 * in localStorage, and draws everything inside a Shadow DOM so the page's CSS cannot leak in.
 * Nothing from the feed is ever parsed as HTML: every text goes in through textContent.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.src || !window.fetch) return;
  var source = new URL(script.src, window.location.href);
  var base = source.origin + source.pathname.replace(/\/widget\.js$/, "");
  var context = script.getAttribute("data-context");
  var signature = script.getAttribute("data-context-signature");
  var readerQuery = context && signature ?
    "context=" + encodeURIComponent(context) + "&signature=" + encodeURIComponent(signature) : "";
  var feedUrl = base + "/changelog/widget.json" + (readerQuery ? "?" + readerQuery : "");
  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  var CATEGORIES = { "new": "New", improved: "Improved", fixed: "Fixed" };
  var storageKey = "darklaunch-whats-new:" + base;
  var label = script.getAttribute("data-label") || "What\u2019s new";
  var targetSelector = script.getAttribute("data-target");
  var onLeft = script.getAttribute("data-position") === "left";

  var CSS = [
    ":host { all: initial; }",
    ".root { --accent: #4338ca; --accent-text: #fff; --bg: #fff; --text: #1c1f26; --muted: #5b6170;",
    "  --border: #e3e5ec; --soft: #f4f5fb; --new: #4338ca; --new-bg: #e8eaff; --improved: #047857;",
    "  --improved-bg: #dcf7ea; --fixed: #9a4a00; --fixed-bg: #fdefd9;",
    "  font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;",
    "  color: var(--text); }",
    "@media (prefers-color-scheme: dark) { .root { --accent: #a5b4fc; --accent-text: #111827;",
    "  --bg: #15181e; --text: #e7e9ee; --muted: #a3a9b6; --border: #2a2f3a; --soft: #1d2129;",
    "  --new: #b4bfff; --new-bg: #262a52; --improved: #74e0b4; --improved-bg: #11342a;",
    "  --fixed: #fcc77c; --fixed-bg: #3a2a10; } }",
    ".root.floating { position: fixed; bottom: 20px; right: 20px; z-index: 2147483000; }",
    ".root.floating.left { right: auto; left: 20px; }",
    ".root.inline { position: relative; display: inline-block; }",
    ".trigger { display: inline-flex; align-items: center; gap: 8px; font: inherit; font-weight: 600;",
    "  padding: 9px 16px; border-radius: 999px; border: 1px solid var(--border); cursor: pointer;",
    "  background: var(--bg); color: var(--text); box-shadow: 0 4px 16px rgb(0 0 0 / 14%); }",
    ".trigger:hover { border-color: var(--accent); }",
    ".trigger:focus-visible, .close:focus-visible, a:focus-visible { outline: 3px solid var(--accent);",
    "  outline-offset: 2px; }",
    ".icon { width: 18px; height: 18px; flex: none; color: var(--accent); }",
    ".count { min-width: 22px; height: 22px; padding: 0 7px; border-radius: 999px; font-size: 12px;",
    "  font-weight: 700; line-height: 22px; text-align: center; background: var(--accent);",
    "  color: var(--accent-text); }",
    ".count[hidden] { display: none; }",
    ".visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;",
    "  clip: rect(0 0 0 0); white-space: nowrap; }",
    ".panel { position: absolute; bottom: calc(100% + 12px); right: 0; width: min(380px, calc(100vw - 40px));",
    "  max-height: min(560px, 75vh); display: flex; flex-direction: column; background: var(--bg);",
    "  color: var(--text); border: 1px solid var(--border); border-radius: 16px; overflow: hidden;",
    "  box-shadow: 0 18px 50px rgb(0 0 0 / 22%); }",
    ".left .panel, .inline .panel { right: auto; left: 0; }",
    ".inline .panel { bottom: auto; top: calc(100% + 10px); }",
    ".panel[hidden] { display: none; }",
    ".head { display: flex; align-items: center; justify-content: space-between; gap: 12px;",
    "  padding: 14px 16px; border-bottom: 1px solid var(--border); }",
    ".head h2 { margin: 0; font-size: 16px; font-weight: 700; }",
    ".close { font: inherit; font-size: 20px; line-height: 1; width: 32px; height: 32px; border: 0;",
    "  border-radius: 8px; background: transparent; color: var(--muted); cursor: pointer; }",
    ".close:hover { background: var(--soft); color: var(--text); }",
    "ol { list-style: none; margin: 0; padding: 6px; overflow-y: auto; }",
    "li a { display: block; padding: 12px; border-radius: 10px; color: inherit; text-decoration: none; }",
    "li a:hover { background: var(--soft); }",
    ".meta { display: flex; align-items: center; gap: 8px; font-size: 12px; color: var(--muted); }",
    ".cat { padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 700;",
    "  background: var(--new-bg); color: var(--new); }",
    ".cat.improved { background: var(--improved-bg); color: var(--improved); }",
    ".cat.fixed { background: var(--fixed-bg); color: var(--fixed); }",
    ".unread { display: inline-flex; align-items: center; gap: 4px; font-weight: 700;",
    "  color: var(--accent); }",
    ".unread::before { content: ''; width: 8px; height: 8px; border-radius: 50%; background: var(--accent); }",
    ".title { display: block; margin: 4px 0 2px; font-weight: 700; font-size: 15px; }",
    ".summary { margin: 0; color: var(--muted); font-size: 14px; }",
    ".empty { margin: 0; padding: 24px 16px; color: var(--muted); text-align: center; }",
    ".foot { padding: 10px 16px; border-top: 1px solid var(--border); font-size: 14px; }",
    ".foot a { color: var(--accent); font-weight: 600; text-decoration: none; }",
    "@media (prefers-reduced-motion: no-preference) { .panel { animation: rise 140ms ease-out; } }",
    "@keyframes rise { from { opacity: 0; transform: translateY(6px); } to { opacity: 1; transform: none; } }"
  ].join("\n");

  function readState() {
    try { return JSON.parse(window.localStorage.getItem(storageKey) || "{}") || {}; }
    catch (e) { return {}; }
  }

  function writeState(state) {
    try { window.localStorage.setItem(storageKey, JSON.stringify(state)); }
    catch (e) { /* private mode or storage full: the count just comes back next time */ }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeLink(value) {
    try {
      var url = new URL(String(value), base);
      if (url.protocol !== "https:" && url.protocol !== "http:") return null;
      // Links into this changelog carry the reader's signed context, so their pages reveal
      // the same entries (the changelog remembers it in a cookie and drops it from the address).
      if (readerQuery && url.origin === source.origin) {
        url.search += (url.search ? "&" : "") + readerQuery;
      }
      return url.href;
    } catch (e) { return null; }
  }

  function isUnread(item, state) {
    if (!state.time) return true;
    return item.id !== state.id && Date.parse(item.date_published) > Date.parse(state.time);
  }

  function formatDate(value) {
    // As the changelog prints it: "5 March 2026", the day in UTC.
    var date = new Date(value);
    if (isNaN(date.getTime())) return "";
    return date.getUTCDate() + " " + MONTHS[date.getUTCMonth()] + " " + date.getUTCFullYear();
  }

  function sparkle() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "icon");
    var star = document.createElementNS(ns, "path");
    star.setAttribute("d", "M12 2.5l2.1 6.4 6.4 2.1-6.4 2.1L12 19.5l-2.1-6.4L3.5 11l6.4-2.1z");
    star.setAttribute("fill", "currentColor");
    var small = document.createElementNS(ns, "path");
    small.setAttribute("d", "M19 15.5l.9 2.6 2.6.9-2.6.9-.9 2.6-.9-2.6-2.6-.9 2.6-.9z");
    small.setAttribute("fill", "currentColor");
    svg.appendChild(star);
    svg.appendChild(small);
    return svg;
  }

  function adoptStyles(root) {
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
      try {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
        return;
      } catch (e) { /* older browsers: fall back to a style element */ }
    }
    root.appendChild(el("style", null, CSS));
  }

  function render(feed) {
    var items = Array.isArray(feed.items) ? feed.items : [];
    var host = document.createElement("div");
    host.setAttribute("data-darklaunch-widget", "");
    var target = targetSelector ? document.querySelector(targetSelector) : null;
    (target || document.body).appendChild(host);
    var shadow = host.attachShadow({ mode: "open" });
    adoptStyles(shadow);

    var root = el("div", "root " + (target ? "inline" : "floating" + (onLeft ? " left" : "")));
    var trigger = el("button", "trigger");
    trigger.type = "button";
    trigger.setAttribute("aria-expanded", "false");
    trigger.setAttribute("aria-haspopup", "dialog");
    trigger.appendChild(sparkle());
    trigger.appendChild(el("span", "label", label));
    var count = el("span", "count");
    trigger.appendChild(count);
    var unreadWord = el("span", "visually-hidden");
    trigger.appendChild(unreadWord);

    var panel = el("section", "panel");
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", feed.title ? String(feed.title) : label);
    var head = el("div", "head");
    head.appendChild(el("h2", null, feed.title || label));
    var close = el("button", "close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    head.appendChild(close);
    panel.appendChild(head);
    var list = el("ol");
    panel.appendChild(list);
    var all = safeLink(feed.changelog_url);
    if (all) {
      var foot = el("div", "foot");
      var more = el("a", null, "See all updates \u2192");
      more.href = all;
      more.target = "_blank";
      more.rel = "noopener";
      foot.appendChild(more);
      panel.appendChild(foot);
    }
    root.appendChild(panel);
    root.appendChild(trigger);
    shadow.appendChild(root);

    function fillList(state) {
      list.textContent = "";
      if (!items.length) {
        list.appendChild(el("li", "empty", "No updates yet."));
        return;
      }
      items.forEach(function (item) {
        var li = el("li");
        var link = el("a");
        var href = safeLink(item.url);
        if (href) {
          link.href = href;
          link.target = "_blank";
          link.rel = "noopener";
        }
        var meta = el("span", "meta");
        if (isUnread(item, state)) meta.appendChild(el("span", "unread", "Unread"));
        var category = String(item.category || "new");
        var name = item.category_label || CATEGORIES[category] || category;
        meta.appendChild(el("span", "cat " + category.replace(/[^a-z]/g, ""), name));
        var when = el("time", null, formatDate(item.date_published));
        when.setAttribute("datetime", String(item.date_published || ""));
        meta.appendChild(when);
        link.appendChild(meta);
        link.appendChild(el("span", "title", item.title));
        if (item.summary) link.appendChild(el("p", "summary", item.summary));
        li.appendChild(link);
        list.appendChild(li);
      });
    }

    function showCount(state) {
      var unread = items.filter(function (item) { return isUnread(item, state); }).length;
      count.hidden = unread === 0;
      count.textContent = unread > 9 ? "9+" : String(unread);
      // The button's name is its visible text ("What's new 3"), with the word screen readers
      // need kept as visually hidden text inside the button, never a different aria-label.
      unreadWord.textContent = unread ? " unread" : "";
    }

    function open() {
      fillList(readState()); // dots show what was new when the panel opened
      panel.hidden = false;
      trigger.setAttribute("aria-expanded", "true");
      if (items.length) writeState({ id: items[0].id, time: items[0].date_published });
      showCount(readState());
      close.focus();
    }

    function shut(returnFocus) {
      if (panel.hidden) return;
      panel.hidden = true;
      trigger.setAttribute("aria-expanded", "false");
      if (returnFocus) trigger.focus();
    }

    trigger.addEventListener("click", function () { panel.hidden ? open() : shut(false); });
    close.addEventListener("click", function () { shut(true); });
    shadow.addEventListener("keydown", function (event) {
      if (event.key === "Escape") shut(true);
    });
    document.addEventListener("click", function (event) {
      var path = event.composedPath ? event.composedPath() : [];
      if (path.indexOf(host) === -1) shut(false);
    });

    showCount(readState());
  }

  function why(message) {
    if (window.console && console.info) console.info("Darklaunch widget: " + message);
  }

  function start() {
    fetch(feedUrl, { credentials: "omit", mode: "cors" })
      .then(function (response) {
        if (response.status === 503) {
          why("the changelog at " + base + " is closed (the production gate is closed and " +
            "the changelog is not public on its own), so the widget shows nothing.");
          return null;
        }
        if (!response.ok) {
          why("the changelog at " + base + " answered " + response.status +
            ", so the widget shows nothing.");
          return null;
        }
        return response.json();
      })
      .then(function (feed) { if (feed) render(feed); })
      .catch(function (error) {
        why("could not read " + feedUrl + " (" + error + "), so the widget shows nothing.");
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
