/*
 * unipush-bridge browser SDK: uni-app's push API for a page, served by the daemon's web
 * endpoint. No import/export statements, so it loads both as a plain <script> and as an
 * ES module (sdk/index.js re-exports it); either way it sets globalThis.UniPushBridge.
 *
 *   UniPushBridge.install(uni, {url: "ws://127.0.0.1:8790/ws", token: "..."})
 *
 * The page speaks the daemon's local API over the websocket (docs/protocol.md part 2):
 * one JSON request/answer/event per text message, first a "hello" carrying the pairing
 * token. `protocol` holds that framing and uni's errMsg forms, free of I/O, so node's
 * test runner checks it without a browser.
 */
(function (root) {
  "use strict";

  var TOKEN_KEY = "unipush-bridge-token";
  var RETRY_MS = 1000;

  var protocol = {
    /** One request message; `params` is always an object (the daemon's rule). */
    request: function (id, method, params) {
      return JSON.stringify({ id: id, method: method, params: params || {} });
    },
    /** The one-way ack the daemon waits for once the page's listeners had an event. */
    ack: function (pushIds) {
      return JSON.stringify({ method: "ack", params: { push_ids: pushIds } });
    },
    /** What a message from the daemon is: an answer to request `id`, an event, or bad. */
    parse: function (text) {
      var msg;
      try {
        msg = JSON.parse(text);
      } catch (e) {
        return { kind: "bad", reason: "not JSON" };
      }
      if (msg === null || typeof msg !== "object") return { kind: "bad", reason: "not an object" };
      if (msg.event === "push" && msg.data && typeof msg.data === "object") {
        return { kind: "event", pushId: msg.push_id || null, data: msg.data };
      }
      if ("result" in msg && msg.result && typeof msg.result.errMsg === "string") {
        return { kind: "answer", id: msg.id, result: msg.result };
      }
      return { kind: "bad", reason: "neither an answer nor an event" };
    },
    ok: function (api, fields) {
      var res = { errMsg: api + ":ok" };
      for (var k in fields || {}) if (k !== "errMsg") res[k] = fields[k];
      return res;
    },
    /** uni's failure: "<api>:fail <reason>", the reason left out when empty. */
    fail: function (api, reason) {
      return { errMsg: api + ":fail" + (reason ? " " + reason : "") };
    },
    isOk: function (res) {
      return !!res && typeof res.errMsg === "string" && /:ok$/.test(res.errMsg);
    },
    /** The daemon answers under its own method name; the page sees the uni api name. */
    rename: function (res, api) {
      var out = {};
      for (var k in res) out[k] = res[k];
      out.errMsg = String(res.errMsg).replace(/^[^:]*:/, api + ":");
      return out;
    },
  };

  /** uni's calling convention: success/fail/complete callbacks, and a Promise too. A
   * page that passes fail or complete has handled the failure, so its Promise rejects
   * without an "unhandled rejection" warning. */
  function settle(api, options, work) {
    options = options || {};
    var p = Promise.resolve()
      .then(work)
      .then(
        function (res) {
          return res;
        },
        function (err) {
          return protocol.fail(api, err && err.message ? err.message : String(err));
        }
      )
      .then(function (res) {
        res = protocol.rename(res, api);
        var ok = protocol.isOk(res);
        var cb = ok ? options.success : options.fail;
        if (typeof cb === "function") cb(res);
        if (typeof options.complete === "function") options.complete(res);
        if (!ok) throw res;
        return res;
      });
    if (typeof options.fail === "function" || typeof options.complete === "function") {
      p.catch(function () {});
    }
    return p;
  }

  function storage() {
    try {
      return root.localStorage || null;
    } catch (e) {
      return null;
    }
  }

  function Bridge(opts) {
    this.url = opts.url;
    this.WebSocket = opts.WebSocket || root.WebSocket;
    var store = storage();
    if (opts.token && store) store.setItem(TOKEN_KEY, opts.token);
    this.token = opts.token || (store && store.getItem(TOKEN_KEY)) || null;
    this.nextId = 1;
    this.pending = {};
    this.listeners = [];
    this.subscribed = false;
    this.ready = null;
    this.ws = null;
    this.seen = {};
    // payload objects of the notifications this page created, by their JSON, so a click
    // hands back the very object the page passed in.
    this.payloads = {};
    this.retry = null;
  }

  Bridge.prototype.open = function () {
    var self = this;
    if (this.ready) return this.ready;
    if (!this.token) return Promise.reject(new Error("not paired: run `unipush-bridge web pair --origin <this origin>` and pass its token"));
    if (!this.url) return Promise.reject(new Error("no url: pass the daemon's web endpoint, such as ws://127.0.0.1:8790/ws"));
    this.ready = new Promise(function (resolve, reject) {
      var ws = new self.WebSocket(self.url);
      self.ws = ws;
      ws.onopen = function () {
        self.send("hello", { token: self.token }).then(function (res) {
          if (protocol.isOk(res)) resolve(ws);
          else {
            reject(new Error(res.errMsg.replace(/^hello:fail ?/, "")));
            ws.close();
          }
        });
      };
      ws.onmessage = function (ev) {
        self.receive(ev.data);
      };
      ws.onerror = function () {};
      ws.onclose = function (ev) {
        var why = "connection closed" + (ev && ev.reason ? ": " + ev.reason : "");
        reject(new Error(why));
        self.closed(why);
      };
    });
    return this.ready;
  };

  Bridge.prototype.closed = function (why) {
    var self = this;
    this.ready = null;
    this.ws = null;
    this.subscribed = false;
    var pending = this.pending;
    this.pending = {};
    for (var id in pending) pending[id](protocol.fail(pending[id].method, why));
    if (this.listeners.length && !this.retry) {
      this.retry = setTimeout(function () {
        self.retry = null;
        if (self.listeners.length) self.subscribe();
      }, RETRY_MS);
    }
  };

  Bridge.prototype.send = function (method, params) {
    var self = this;
    var id = this.nextId++;
    return new Promise(function (resolve) {
      resolve.method = method;
      self.pending[id] = resolve;
      self.ws.send(protocol.request(id, method, params));
    });
  };

  Bridge.prototype.call = function (method, params) {
    var self = this;
    return this.open().then(function () {
      return self.send(method, params);
    });
  };

  Bridge.prototype.receive = function (text) {
    var msg = protocol.parse(text);
    if (msg.kind === "answer") {
      var done = this.pending[msg.id];
      delete this.pending[msg.id];
      if (done) done(msg.result);
    } else if (msg.kind === "event") {
      this.dispatch(msg);
    }
  };

  Bridge.prototype.dispatch = function (msg) {
    if (msg.pushId && this.seen[msg.pushId]) return this.ws.send(protocol.ack([msg.pushId]));
    var data = msg.data;
    if (data.type === "click" && data.data && "payload" in data.data) {
      var mine = this.payloads[JSON.stringify(data.data.payload)];
      if (mine !== undefined) data.data.payload = mine;
    }
    var res = { type: data.type, data: data.data };
    var listeners = this.listeners.slice();
    for (var i = 0; i < listeners.length; i++) {
      try {
        listeners[i](res);
      } catch (e) {
        if (root.console) root.console.error(e);
      }
    }
    if (msg.pushId) {
      this.seen[msg.pushId] = true;
      if (this.ws) this.ws.send(protocol.ack([msg.pushId]));
    }
  };

  Bridge.prototype.subscribe = function () {
    var self = this;
    if (this.subscribed) return;
    this.subscribed = true;
    this.call("onPushMessage", { ack: true }).then(
      function (res) {
        if (!protocol.isOk(res)) self.subscribed = false;
      },
      function () {
        self.subscribed = false;
      }
    );
  };

  /** Puts uni's push API on `uni` (the page's, or globalThis.uni, made if missing). */
  function install(uni, opts) {
    if (uni && !opts && typeof uni.url === "string") {
      opts = uni;
      uni = null;
    }
    uni = uni || root.uni || (root.uni = {});
    var bridge = new Bridge(opts || {});

    uni.getPushClientId = function (options) {
      return settle("getPushClientId", options, function () {
        var params = options && typeof options.timeout === "number" ? { timeout: options.timeout } : {};
        return bridge.call("getPushClientId", params);
      });
    };

    uni.onPushMessage = function (callback) {
      if (typeof callback !== "function") return;
      if (bridge.listeners.indexOf(callback) < 0) bridge.listeners.push(callback);
      bridge.subscribe();
    };

    uni.offPushMessage = function (callback) {
      if (typeof callback === "function") {
        var at = bridge.listeners.indexOf(callback);
        if (at >= 0) bridge.listeners.splice(at, 1);
      } else {
        bridge.listeners.length = 0;
      }
      if (!bridge.listeners.length && bridge.subscribed && bridge.ws) {
        bridge.subscribed = false;
        bridge.send("offPushMessage", {});
      }
    };

    uni.createPushMessage = function (options) {
      options = options || {};
      var params = {};
      for (var k in options) {
        if (k !== "success" && k !== "fail" && k !== "complete" && typeof options[k] !== "function") {
          params[k] = options[k] instanceof Date ? options[k].toISOString() : options[k];
        }
      }
      if (options.payload !== undefined && options.payload !== null) {
        bridge.payloads[JSON.stringify(options.payload)] = options.payload;
      }
      return settle("createPushMessage", options, function () {
        return bridge.call("createPushMessage", params);
      });
    };

    function channelManager() {
      var known = [];
      return {
        setPushChannel: function (options) {
          options = options || {};
          if (options.channelId && known.indexOf(options.channelId) < 0) known.push(options.channelId);
          bridge.call("setPushChannel", options).then(function (res) {
            if (res && res.channels) known = res.channels;
          }, function () {});
        },
        /** uni answers synchronously with channelId strings; the daemon's list is
         * fetched in the background, so call refresh() and await it for the full list. */
        getAllChannels: function () {
          var all = ["DcloudChannelID"];
          for (var i = 0; i < known.length; i++) if (all.indexOf(known[i]) < 0) all.push(known[i]);
          return all;
        },
        refresh: function () {
          return bridge.call("getAllChannels", {}).then(function (res) {
            if (protocol.isOk(res)) known = res.channels.slice();
            return known.slice();
          });
        },
      };
    }
    var manager = null;
    uni.getChannelManager = function () {
      if (!manager) {
        manager = channelManager();
        manager.refresh().catch(function () {});
      }
      return manager;
    };
    uni.getPushChannelManager = uni.getChannelManager;
    uni.__unipushBridge = bridge;
    return uni;
  }

  root.UniPushBridge = { install: install, protocol: protocol, settle: settle, TOKEN_KEY: TOKEN_KEY };
  if (root.document && root.document.currentScript) {
    var s = root.document.currentScript;
    if (s.dataset && s.dataset.url) install(root.uni, { url: s.dataset.url, token: s.dataset.token });
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
