/*
 * unipush-bridge browser SDK: uni-app's push API for a page, served by the daemon's web
 * endpoint (GET /sdk.js; docs/web.md). No import/export statements, so it loads both as
 * a plain <script> and as an ES module (sdk/index.js re-exports it); either way it sets
 * globalThis.UniPushBridge.
 *
 *   UniPushBridge.install(uni, {url: "ws://127.0.0.1:8790/ws", token: "..."})
 *   <script src="http://127.0.0.1:8790/sdk.js" data-token="..."></script>  (installs on
 *   window.uni, the url taken from the script's own address)
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
  var RETRY_MAX_MS = 30000;
  /** Close code of a hello the daemon refused (not paired): retrying cannot help. */
  var NOT_PAIRED = 4401;
  /** Payload objects and push ids remembered (a click hands back the page's object;
   * a push the daemon hands on again after a reconnect is dropped). */
  var REMEMBER = 200;
  var DEFAULT_CHANNEL = "DcloudChannelID";

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
    /** What follows ":fail " in a failure's errMsg (uni-h5 puts its own api name back). */
    reason: function (res) {
      return String((res && res.errMsg) || "").replace(/^[^:]*:fail ?/, "");
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
    /** createPushMessage's options as the daemon takes them: the callbacks left out, a
     * Date `when` as its ISO string (what JSON.stringify makes of it, said outright; an
     * Invalid Date is null there, where toISOString would throw). */
    pushOptions: function (options) {
      var params = {};
      for (var k in options || {}) {
        var v = options[k];
        if (k === "success" || k === "fail" || k === "complete" || typeof v === "function") continue;
        params[k] = v instanceof Date ? (isNaN(v.getTime()) ? null : v.toISOString()) : v;
      }
      return params;
    },
    /** The websocket URL of an endpoint from the address the SDK was loaded from, when
     * that is one of the paths the daemon serves it on; anything else (a bundle, a copy
     * on the app's own server) names the app, not the daemon: null, so `url` is asked for. */
    endpointOf: function (scriptUrl) {
      var m = /^(https?):\/\/([^/?#]+)\/(?:sdk\.js|sdk\.mjs|unipush-bridge\.js)(?:[?#]|$)/.exec(String(scriptUrl || ""));
      if (!m) return null;
      return (m[1] === "https" ? "wss" : "ws") + "://" + m[2] + "/ws";
    },
  };

  /** uni's calling convention (its promisify): a call given any of success, fail or
   * complete answers through them and returns nothing, so a failure with no fail
   * callback goes unseen, as in uni; a call with none returns a Promise that rejects
   * on failure. A callback that throws is logged with console.error and complete
   * still runs (uni's tryCatch, helpers/api/catch.ts). */
  function settle(api, options, work) {
    var callbacks = hasCallback(options);
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
        // uni-app x hands fail a UniError (an Error made with its errMsg): code there
        // reads err.message. Not enumerable, so uni-app's {errMsg} is unchanged.
        if (!ok) Object.defineProperty(res, "message", { value: res.errMsg, writable: true, configurable: true });
        // uni wraps each callback in tryCatch: one that throws is logged, and
        // complete still runs after success or fail.
        invoke(ok ? options.success : options.fail, res);
        invoke(options.complete, res);
        if (!ok) throw res;
        return res;
      });
    if (callbacks) {
      p.catch(function () {});
      return undefined;
    }
    return p;
  }

  function invoke(cb, res) {
    if (typeof cb !== "function") return;
    try {
      cb(res);
    } catch (e) {
      if (root.console) root.console.error(e);
    }
  }

  function hasCallback(options) {
    return (
      !!options &&
      typeof options === "object" &&
      (typeof options.success === "function" ||
        typeof options.fail === "function" ||
        typeof options.complete === "function")
    );
  }

  function storage() {
    try {
      return root.localStorage || null;
    } catch (e) {
      return null;
    }
  }

  /** A bounded insertion-ordered map: the oldest entry goes first. */
  function Recent(limit) {
    this.limit = limit;
    this.keys = [];
    this.values = {};
  }
  Recent.prototype.has = function (key) {
    return Object.prototype.hasOwnProperty.call(this.values, key);
  };
  Recent.prototype.get = function (key) {
    return this.has(key) ? this.values[key] : undefined;
  };
  Recent.prototype.set = function (key, value) {
    if (!this.has(key)) {
      this.keys.push(key);
      if (this.keys.length > this.limit) delete this.values[this.keys.shift()];
    }
    this.values[key] = value;
  };

  function Bridge(opts) {
    this.url = opts.url || root.UniPushBridge.defaultUrl || null;
    this.WebSocket = opts.WebSocket || root.WebSocket;
    this.setTimeout = opts.setTimeout || root.setTimeout.bind(root);
    var store = storage();
    if (opts.token && store) store.setItem(TOKEN_KEY, opts.token);
    this.token = opts.token || (store && store.getItem(TOKEN_KEY)) || null;
    this.nextId = 1;
    this.pending = {};
    this.listeners = [];
    this.subscribed = false;
    this.ready = null;
    this.ws = null;
    this.seen = new Recent(REMEMBER);
    // payload objects of the notifications this page created, by their JSON, so a click
    // hands back the very object the page passed in.
    this.payloads = new Recent(REMEMBER);
    // events that came while the page had no listener: the next one gets them.
    this.held = [];
    this.retry = null;
    this.retryMs = RETRY_MS;
    this.refused = null;
    // uni-h5's own push runtime (its invokePushCallback), when the page is a uni-app
    // build: the SDK then feeds it as DCloud's uni-push module does (see install).
    this.runtime = null;
  }

  /** Whether events are wanted: a uni-h5 runtime always takes them (its listeners are
   * its own business, as with uni-push); a plain page once it has a listener. */
  Bridge.prototype.listening = function () {
    return !!this.runtime || this.listeners.length > 0;
  };

  /** A uni-h5 runtime's session: subscribe, and hand it the cid, or why there is none,
   * as uni-push does with invokePushCallback({type: "clientId", cid, errMsg}). */
  Bridge.prototype.feed = function () {
    var self = this;
    this.subscribe();
    this.call("getPushClientId", {})
      .then(null, function (err) {
        return protocol.fail("getPushClientId", err && err.message ? err.message : String(err));
      })
      .then(function (res) {
        var ok = protocol.isOk(res) && typeof res.cid === "string" && res.cid;
        invoke(
          self.runtime,
          ok ? { type: "clientId", cid: res.cid } : { type: "clientId", cid: "", errMsg: protocol.reason(res) }
        );
      });
  };

  Bridge.prototype.open = function () {
    var self = this;
    if (this.ready) return this.ready;
    if (this.refused) return Promise.reject(new Error(this.refused));
    if (!this.token) return Promise.reject(new Error("not paired: run `unipush-bridge web pair --origin <this origin>` and pass its token"));
    if (!this.url) return Promise.reject(new Error("no url: pass the daemon's web endpoint, such as ws://127.0.0.1:8790/ws"));
    this.ready = new Promise(function (resolve, reject) {
      var ws;
      try {
        ws = new self.WebSocket(self.url);
      } catch (e) {
        self.ready = null;
        reject(e);
        return;
      }
      self.ws = ws;
      ws.onopen = function () {
        self.send("hello", { token: self.token }).then(function (res) {
          if (protocol.isOk(res)) {
            self.retryMs = RETRY_MS;
            resolve(ws);
          } else {
            self.refused = res.errMsg.replace(/^hello:fail ?/, "");
            reject(new Error(self.refused));
          }
        });
      };
      ws.onmessage = function (ev) {
        self.receive(ev.data);
      };
      ws.onerror = function () {};
      ws.onclose = function (ev) {
        if (self.ws !== ws) return;
        var why = self.refused || "connection closed" + (ev && ev.reason ? ": " + ev.reason : "");
        if (ev && ev.code === NOT_PAIRED && !self.refused) self.refused = why;
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
    // A page that listens wants its events back: reconnect, and subscribe again (the
    // daemon then hands on what it held meanwhile). Not when the token was refused.
    if (this.listening() && !this.retry && !this.refused) {
      var wait = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      this.retry = this.setTimeout(function () {
        self.retry = null;
        if (self.runtime) self.feed();
        else if (self.listening()) self.subscribe();
      }, wait);
    }
  };

  Bridge.prototype.send = function (method, params) {
    var self = this;
    var id = this.nextId++;
    return new Promise(function (resolve) {
      resolve.method = method;
      self.pending[id] = resolve;
      try {
        self.ws.send(protocol.request(id, method, params));
      } catch (e) {
        delete self.pending[id];
        resolve(protocol.fail(method, "connection closed"));
      }
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
      // A refused hello is followed by the close at once: note why before it comes.
      if (/^hello:fail/.test(msg.result.errMsg)) this.refused = msg.result.errMsg.replace(/^hello:fail ?/, "");
      var done = this.pending[msg.id];
      delete this.pending[msg.id];
      if (done) done(msg.result);
    } else if (msg.kind === "event") {
      this.dispatch(msg);
    }
  };

  Bridge.prototype.acked = function (pushId) {
    if (!pushId) return;
    this.seen.set(pushId, true);
    if (this.ws) {
      try {
        this.ws.send(protocol.ack([pushId]));
      } catch (e) {}
    }
  };

  Bridge.prototype.dispatch = function (msg) {
    if (msg.pushId && this.seen.has(msg.pushId)) return this.acked(msg.pushId);
    if (!this.listening()) {
      // off() came before the daemon heard of it: keep it for the next listener
      // (uni's cold-start click waits for the next page that subscribes too).
      this.held.push(msg);
      return;
    }
    var data = msg.data;
    if (data.type === "click" && data.data && typeof data.data === "object" && "payload" in data.data) {
      var key = JSON.stringify(data.data.payload);
      if (this.payloads.has(key)) data.data.payload = this.payloads.get(key);
    }
    if (this.runtime) {
      // uni-h5's invokePushCallback runs the app's onPushMessage listeners, with uni's
      // own rules (res.stopped, a click object each); "pushMsg" is its name for receive.
      if (data.type === "receive" || data.type === "click") {
        invoke(this.runtime, { type: data.type === "click" ? "click" : "pushMsg", message: data.data });
      }
      return this.acked(msg.pushId);
    }
    var res = { type: data.type, data: data.data };
    var listeners = this.listeners.slice();
    for (var i = 0; i < listeners.length; i++) {
      // uni hands every listener one receive object (so res.stopped reaches the
      // next) and each its own click object (invokePushCallback's forEach).
      if (res.type === "click" && i > 0) res = { type: data.type, data: data.data };
      invoke(listeners[i], res); // one that throws is logged; the next still gets it
      // uni: a listener that sets res.stopped keeps a receive from the later ones.
      if (res.stopped && res.type === "receive") break;
    }
    this.acked(msg.pushId);
  };

  Bridge.prototype.subscribe = function () {
    var self = this;
    var held = this.held;
    this.held = [];
    for (var i = 0; i < held.length; i++) this.dispatch(held[i]);
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

  Bridge.prototype.unsubscribe = function () {
    if (!this.subscribed) return;
    this.subscribed = false;
    if (this.ready) this.call("offPushMessage", {}).catch(function () {});
  };

  /** uni's getPushClientId/onPushMessage/offPushMessage on a plain page's `uni`. */
  function definePushApi(uni, bridge) {
    uni.getPushClientId = function (options) {
      return settle("getPushClientId", options, function () {
        var params = options && typeof options.timeout === "number" ? { timeout: options.timeout } : {};
        return bridge.call("getPushClientId", params);
      });
    };

    /** uni: the same callback twice is one listener. */
    uni.onPushMessage = function (callback) {
      if (typeof callback !== "function") return;
      if (bridge.listeners.indexOf(callback) < 0) bridge.listeners.push(callback);
      bridge.subscribe();
    };

    /** uni: off(cb) removes that one; off() with no argument removes all; anything
     * else (off("receive")) is not a listener and removes nothing. */
    uni.offPushMessage = function (callback) {
      if (!callback) {
        bridge.listeners.length = 0;
      } else {
        var at = bridge.listeners.indexOf(callback);
        if (at >= 0) bridge.listeners.splice(at, 1);
      }
      if (!bridge.listeners.length) bridge.unsubscribe();
    };
  }

  /** Puts uni's push API on `uni` (the page's, or globalThis.uni, made if missing).
   *
   * A uni-app H5 build has its own getPushClientId/onPushMessage/offPushMessage in
   * @dcloudio/uni-h5, and its production build compiles the app's `uni.getPushClientId`
   * into an import of that function, so nothing put on `uni` is called. What uni-h5
   * does expose is how uni-push feeds it: invokePushCallback({type: "enabled" |
   * "clientId" | "pushMsg" | "click"}) (dcloudio/uni-app packages/uni-api/src/service/
   * plugin/push.ts, packages/uni-push/src/index.ts). Given that function
   * (opts.invokePushCallback, or found on `uni`), the SDK feeds uni-h5 instead, and
   * adds only what uni-h5 lacks (createPushMessage and the channel manager). */
  function install(uni, opts) {
    if (uni && !opts && (typeof uni.url === "string" || typeof uni.token === "string")) {
      opts = uni;
      uni = null;
    }
    opts = opts || {};
    uni = uni || root.uni || (root.uni = {});
    if (!Object.isExtensible(uni)) {
      throw new TypeError(
        "UniPushBridge.install: this uni object cannot take new properties (frozen, or a module namespace " +
          "such as `import * as uni`): pass the global uni (window.uni)"
      );
    }
    var bridge = new Bridge(opts);
    var runtime =
      typeof opts.invokePushCallback === "function"
        ? opts.invokePushCallback
        : typeof uni.invokePushCallback === "function"
          ? uni.invokePushCallback
          : null;
    if (runtime) {
      bridge.runtime = runtime;
      // what uni-push does as it loads: without it uni-h5's getPushClientId answers
      // "uniPush is not enabled" (it looks on the next microtask, so this is now).
      runtime({ type: "enabled" });
      bridge.feed();
    } else {
      definePushApi(uni, bridge);
    }

    uni.createPushMessage = function (options) {
      options = options || {};
      var params = protocol.pushOptions(options);
      if (options.payload !== undefined && options.payload !== null) {
        bridge.payloads.set(JSON.stringify(options.payload), options.payload);
      }
      return settle("createPushMessage", options, function () {
        return bridge.call("createPushMessage", params);
      });
    };

    function channelManager() {
      var known = [DEFAULT_CHANNEL];
      function add(id) {
        if (typeof id === "string" && id && known.indexOf(id) < 0) known.push(id);
      }
      return {
        /** uni's is synchronous and answers nothing: the channel is listed at once (a
         * refusal by the daemon, logged to the console, takes it back out). */
        setPushChannel: function (options) {
          options = options || {};
          var id = options.channelId;
          var isNew = known.indexOf(id) < 0;
          add(id);
          bridge.call("setPushChannel", protocol.pushOptions(options)).then(
            function (res) {
              if (!protocol.isOk(res)) {
                if (isNew) known.splice(known.indexOf(id), 1);
                if (root.console) root.console.warn(protocol.rename(res, "setPushChannel").errMsg);
              }
            },
            function () {}
          );
        },
        /** uni answers synchronously with channelId strings (uni-app code does
         * indexOf on them); the daemon's list is fetched in the background when the
         * manager is made: await refresh() for the full list. */
        getAllChannels: function () {
          return known.slice();
        },
        refresh: function () {
          return bridge.call("getAllChannels", {}).then(function (res) {
            if (protocol.isOk(res) && res.channels) for (var i = 0; i < res.channels.length; i++) add(res.channels[i]);
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
    uni.getPushChannelManager = uni.getChannelManager; // uni-app x's name, the same manager
    uni.__unipushBridge = bridge;
    return uni;
  }

  var script = root.document && root.document.currentScript;
  root.UniPushBridge = {
    install: install,
    protocol: protocol,
    settle: settle,
    TOKEN_KEY: TOKEN_KEY,
    defaultUrl: script ? protocol.endpointOf(script.src) : null,
  };
  if (script && script.dataset && (script.dataset.url || script.dataset.token || "install" in script.dataset)) {
    install(root.uni, { url: script.dataset.url || undefined, token: script.dataset.token || undefined });
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
