// A fake WebSocket and a fake daemon behind it, for the SDK's node tests: the daemon
// answers the local API's requests as runtime/localapi.py does (the same shapes as
// docs/protocol.md part 2) and records what the page sent.

export class FakeDaemon {
  constructor(opts = {}) {
    this.token = opts.token ?? "tok";
    this.cid = opts.cid ?? "0123456789abcdef0123456789abcdef";
    this.sockets = [];
    this.sent = []; // every request the page sent, parsed, across sockets
    this.answers = Object.assign(
      {
        getPushClientId: () => ({ errMsg: "getPushClientId:ok", cid: this.cid }),
        onPushMessage: () => ({ errMsg: "onPushMessage:ok" }),
        offPushMessage: () => ({ errMsg: "offPushMessage:ok" }),
        createPushMessage: (p) =>
          p.content ? { errMsg: "createPushMessage:ok", notification_id: "n1" } : { errMsg: "createPushMessage:fail content is required" },
        setPushChannel: (p) =>
          p.channelDesc ? { errMsg: "setPushChannel:ok", created: true } : { errMsg: "setPushChannel:fail channelDesc is required" },
        getAllChannels: () => ({ errMsg: "getAllChannels:ok", channels: ["DcloudChannelID", "server-made"] }),
      },
      opts.answers || {}
    );
    this.onSubscribe = opts.onSubscribe || null;
    const daemon = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.closedWith = null;
        daemon.sockets.push(this);
        queueMicrotask(() => {
          if (daemon.refuseConnect) return this._close(1006, "");
          this.readyState = 1;
          this.onopen && this.onopen({});
        });
      }
      send(text) {
        if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
        const msg = JSON.parse(text);
        daemon.sent.push(msg);
        queueMicrotask(() => daemon._serve(this, msg));
      }
      close(code = 1000, reason = "") {
        this._close(code, reason);
      }
      _close(code, reason) {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.closedWith = code;
        this.onclose && this.onclose({ code, reason });
      }
    };
  }

  get socket() {
    return this.sockets[this.sockets.length - 1];
  }

  methods() {
    return this.sent.map((m) => m.method);
  }

  /** The daemon sends an event to the page (as localapi's encode_event). */
  event(type, data, pushId) {
    const msg = { event: "push", data: { type, data } };
    if (pushId) msg.push_id = pushId;
    this.socket.onmessage({ data: JSON.stringify(msg) });
  }

  _serve(ws, msg) {
    if (ws.readyState !== 1 || msg.method === "ack") return;
    const reply = (result) => ws.onmessage({ data: JSON.stringify({ id: msg.id, result }) });
    if (msg.method === "hello") {
      if (msg.params.token === this.token) return reply({ errMsg: "hello:ok", appid: "__UNI__DESKTOP" });
      reply({ errMsg: "hello:fail unknown or revoked pairing token" });
      return ws._close(4401, "not paired");
    }
    const answer = this.answers[msg.method];
    const result = answer ? answer(msg.params) : { errMsg: `${msg.method}:fail unknown method` };
    if (result !== undefined) reply(result); // undefined: a call that is still waiting
    if (msg.method === "onPushMessage" && this.onSubscribe) this.onSubscribe(this);
  }
}

/** Let every queued microtask and the timers due now run. */
export function settleDown(ms = 0) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
