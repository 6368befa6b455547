// The browser SDK (js/sdk/unipush-bridge.js) under node's test runner, with a fake
// WebSocket and daemon (sdk-fakes.js): uni's calling convention and errMsg forms, the
// listener rules, clicks with the page's own payload object, held and cold-start
// clicks, reconnects (issue 15 item 1; the browser half of item 4 is
// tests/e2e/test_browser.py).
import { test } from "node:test";
import assert from "node:assert/strict";

import bridge, { install, protocol } from "../sdk/index.js";
import { FakeDaemon, settleDown } from "./sdk-fakes.js";

function page(daemon, extra = {}) {
  const uni = {};
  install(uni, { url: "ws://127.0.0.1:8790/ws", token: "tok", WebSocket: daemon.WebSocket, ...extra });
  return uni;
}

test("issue 15 item 1: getPushClientId: success/complete or the Promise, with uni's errMsg", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const calls = [];
  // uni's promisify: a call with callbacks answers through them and returns nothing.
  const returned = uni.getPushClientId({
    success: (r) => calls.push(["success", r]),
    fail: (r) => calls.push(["fail", r]),
    complete: (r) => calls.push(["complete", r]),
  });
  assert.equal(returned, undefined);
  await settleDown(20);
  const want = { errMsg: "getPushClientId:ok", cid: daemon.cid };
  assert.deepEqual(calls, [["success", want], ["complete", want]]);
  assert.deepEqual(await uni.getPushClientId(), want);
  assert.deepEqual(await uni.getPushClientId({}), want);
  assert.deepEqual(daemon.methods(), ["hello", "getPushClientId", "getPushClientId", "getPushClientId"]);
  assert.deepEqual(daemon.sent[0].params, { token: "tok" });
});

test("issue 15 item 1: a failure calls fail and complete, or rejects the Promise", async () => {
  const reason = 'register fail: {"errorCode":1,"errorMsg":""}';
  const daemon = new FakeDaemon({ answers: { getPushClientId: () => ({ errMsg: `getPushClientId:fail ${reason}` }) } });
  const uni = page(daemon);
  const calls = [];
  uni.getPushClientId({ fail: (r) => calls.push(["fail", r]), complete: (r) => calls.push(["complete", r]) });
  const err = await uni.getPushClientId().then(
    () => assert.fail("resolved"),
    (e) => e
  );
  assert.equal(err.errMsg, `getPushClientId:fail ${reason}`);
  assert.deepEqual(calls, [["fail", err], ["complete", err]]);
  // Only success given, as most pages write it: the failure goes unseen (no Promise,
  // so no unhandled rejection), as in uni.
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  assert.equal(uni.createPushMessage({ title: "no content", success() {} }), undefined);
  await settleDown(20);
  process.off("unhandledRejection", onUnhandled);
  assert.deepEqual(unhandled, []);
  // createPushMessage's own rule comes back under its name
  await assert.rejects(uni.createPushMessage({ title: "no content" }), { errMsg: "createPushMessage:fail content is required" });
});

test("issue 15 item 1: not paired, refused hello, no daemon: <api>:fail <reason>, no retry loop", async () => {
  const daemon = new FakeDaemon();
  const unpaired = {};
  install(unpaired, { url: "ws://127.0.0.1:8790/ws", WebSocket: daemon.WebSocket });
  await assert.rejects(unpaired.getPushClientId(), (e) => /^getPushClientId:fail not paired: run `unipush-bridge web pair/.test(e.errMsg));
  assert.equal(daemon.sockets.length, 0);

  const wrong = page(daemon, { token: "nope" });
  let failed = null;
  wrong.createPushMessage({ content: "x", fail: (r) => (failed = r) });
  await settleDown(20);
  assert.equal(failed.errMsg, "createPushMessage:fail unknown or revoked pairing token");
  wrong.onPushMessage(() => {});
  await settleDown(20);
  assert.equal(daemon.sockets.length, 1, "a refused token is not retried");

  const down = new FakeDaemon();
  down.refuseConnect = true;
  await assert.rejects(page(down).getPushClientId(), { errMsg: "getPushClientId:fail connection closed" });
});

test("issue 15 item 1: the same callback twice is one listener; off(cb) removes it; off() all", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const got = [];
  const a = (res) => got.push(["a", res.type]);
  const b = (res) => got.push(["b", res.type]);
  uni.onPushMessage(a);
  uni.onPushMessage(a);
  uni.onPushMessage(b);
  await settleDown();
  assert.deepEqual(daemon.methods().filter((m) => m === "onPushMessage"), ["onPushMessage"]);
  assert.deepEqual(daemon.sent.find((m) => m.method === "onPushMessage").params, { ack: true });
  daemon.event("receive", { title: "t", content: "c" }, "p1");
  assert.deepEqual(got, [["a", "receive"], ["b", "receive"]]);
  uni.offPushMessage(a);
  daemon.event("receive", { title: "t", content: "c" }, "p2");
  assert.deepEqual(got.slice(2), [["b", "receive"]]);
  uni.onPushMessage(a);
  // Not a listener: uni's off("receive") finds nothing to remove.
  uni.offPushMessage("receive");
  daemon.event("receive", { title: "t", content: "c" }, "p3");
  assert.deepEqual(got.slice(3), [["b", "receive"], ["a", "receive"]]);
  uni.offPushMessage();
  await settleDown();
  assert.equal(daemon.methods().at(-1), "offPushMessage");
  // acks: one per push the listeners had, with its push_id
  const acks = daemon.sent.filter((m) => m.method === "ack").map((m) => m.params.push_ids);
  assert.deepEqual(acks, [["p1"], ["p2"], ["p3"]]);
});

test("a listener that sets res.stopped keeps a receive from the later ones, as in uni", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const got = [];
  uni.onPushMessage((res) => {
    got.push(["first", res.type]);
    res.stopped = true;
  });
  uni.onPushMessage((res) => got.push(["second", res.type]));
  await settleDown();
  daemon.event("receive", { title: "t", content: "c" }, "p1");
  daemon.event("click", { title: "t", content: "c" }, "p2");
  assert.deepEqual(got, [["first", "receive"], ["first", "click"], ["second", "click"]]);
});

test("each listener gets a click object of its own, and all of them one receive object", async () => {
  // uni-app's invokePushCallback: one message object through the receive loop (so
  // res.stopped reaches the next listener), a new {type, data} per click listener.
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const seen = [];
  uni.onPushMessage((res) => {
    seen.push([res.type, res.mark]);
    res.mark = "first";
  });
  uni.onPushMessage((res) => seen.push([res.type, res.mark]));
  await settleDown();
  daemon.event("receive", { title: "t", content: "c" }, "p1");
  daemon.event("click", { title: "t", content: "c" }, "p2");
  assert.deepEqual(seen, [
    ["receive", undefined],
    ["receive", "first"],
    ["click", undefined],
    ["click", undefined],
  ]);
});

test("issue 15 item 1: receive carries uni's data shape", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  let seen = null;
  uni.onPushMessage((res) => (seen = res));
  await settleDown();
  const data = { unipush_version: "2.0", title: "Hi", content: "there", payload: { k: 1 } };
  daemon.event("receive", data, "p1");
  assert.deepEqual(seen, { type: "receive", data });
});

test("issue 15 item 1: a click on the page's notification hands back the same payload object", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const payload = { chat: "42", from: { id: 7, name: "Ada" } };
  const res = await uni.createPushMessage({ title: "Ada", content: "hello", payload });
  assert.deepEqual(res, { errMsg: "createPushMessage:ok", notification_id: "n1" });
  let clicked = null;
  uni.onPushMessage((r) => (clicked = r));
  await settleDown();
  daemon.event("click", { title: "Ada", content: "hello", payload: JSON.parse(JSON.stringify(payload)) });
  assert.equal(clicked.type, "click");
  assert.equal(clicked.data.payload, payload, "the very object the page passed in");
  // a payload the page did not create is passed on as it came
  daemon.event("click", { title: "x", content: "y", payload: { other: true } });
  assert.deepEqual(clicked.data.payload, { other: true });
});

test("issue 15 item 1: createPushMessage passes every uni option, a Date when as ISO, no callbacks", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const when = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const options = {
    title: "T",
    content: "C",
    payload: "text",
    icon: "static/logo.png",
    sound: "none",
    cover: true,
    delay: 2,
    when,
    channelId: "chat",
    category: "im",
    success() {},
    fail() {},
    complete() {},
  };
  assert.equal(uni.createPushMessage(options), undefined);
  await settleDown(20);
  const sent = daemon.sent.find((m) => m.method === "createPushMessage").params;
  const { success, fail, complete, ...uniOptions } = options;
  assert.deepEqual(sent, { ...uniOptions, when: "2026-01-02T03:04:05.000Z" });
  assert.deepEqual(Object.keys(sent).sort(), ["category", "channelId", "content", "cover", "delay", "icon", "payload", "sound", "title", "when"]);
});

test("an invalid Date as when is sent as JSON.stringify sends it (null), not thrown from the call", async () => {
  // A reminder page builds when from a stored time that may be missing:
  // new Date(undefined) is an Invalid Date, whose toISOString() throws RangeError;
  // JSON.stringify (what uni's bridge does with it) writes null. Before, the
  // RangeError came out of uni.createPushMessage itself and no callback ran.
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const done = [];
  uni.createPushMessage({
    content: "C",
    when: new Date(undefined),
    success: (res) => done.push(res.errMsg),
    fail: (err) => done.push(err.errMsg),
  });
  await settleDown(20);
  assert.deepEqual(done, ["createPushMessage:ok"]);
  const sent = daemon.sent.find((m) => m.method === "createPushMessage").params;
  assert.deepEqual(sent, { content: "C", when: null });
});

test("issue 15 item 1: a click that comes while no listener is on waits for the next subscriber", async () => {
  // The daemon's cold-start click: held by the daemon, sent when a listener subscribes.
  const daemon = new FakeDaemon({
    onSubscribe: (d) => queueMicrotask(() => d.event("click", { title: "t", content: "c", payload: { cold: 1 } }, "click-1")),
  });
  const uni = page(daemon);
  const first = [];
  uni.onPushMessage((r) => first.push(r));
  await settleDown();
  assert.deepEqual(first, [{ type: "click", data: { title: "t", content: "c", payload: { cold: 1 } } }]);
  // One that the daemon sent before it heard the page's off(): kept for the next one.
  uni.offPushMessage();
  daemon.event("click", { title: "late", content: "c", payload: { late: 1 } }, "click-2");
  const later = [];
  uni.onPushMessage((r) => later.push(r.data.payload));
  assert.deepEqual(later, [{ late: 1 }]);
  const acked = daemon.sent.filter((m) => m.method === "ack").flatMap((m) => m.params.push_ids);
  assert.deepEqual(acked, ["click-1", "click-2"]);
});

test("issue 15 item 1: reconnect: a listening page subscribes again; a replayed push is dropped", async () => {
  let waiting = false;
  const daemon = new FakeDaemon({ answers: { getPushClientId: () => (waiting ? undefined : { errMsg: "getPushClientId:ok", cid: "c" }) } });
  const timers = [];
  const uni = page(daemon, { setTimeout: (fn, ms) => timers.push([fn, ms]) });
  const got = [];
  uni.onPushMessage((r) => got.push(r.data.title));
  await settleDown();
  daemon.event("receive", { title: "one" }, "p1");
  waiting = true;
  const pending = uni.getPushClientId();
  await settleDown();
  daemon.socket._close(1006, "");
  await assert.rejects(pending, { errMsg: "getPushClientId:fail connection closed" });
  assert.deepEqual(timers.map((t) => t[1]), [1000]);
  timers.shift()[0]();
  await settleDown();
  assert.equal(daemon.sockets.length, 2);
  assert.deepEqual(daemon.methods().filter((m) => m === "hello" || m === "onPushMessage"), ["hello", "onPushMessage", "hello", "onPushMessage"]);
  daemon.event("receive", { title: "one" }, "p1"); // the daemon hands it on again
  daemon.event("receive", { title: "two" }, "p2");
  assert.deepEqual(got, ["one", "two"]);
  const acked = daemon.sent.filter((m) => m.method === "ack").flatMap((m) => m.params.push_ids);
  assert.deepEqual(acked, ["p1", "p1", "p2"], "the replay is acknowledged, not shown");
  // the backoff doubles while the daemon stays away, and starts over once back
  daemon.refuseConnect = true;
  daemon.socket._close(1006, "");
  timers.shift()[0]();
  await settleDown();
  assert.deepEqual(timers.map((t) => t[1]), [2000]);
});

test("issue 15 item 1: getChannelManager and getPushChannelManager: channelId strings, indexOf", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const manager = uni.getChannelManager();
  assert.equal(uni.getPushChannelManager(), manager);
  assert.deepEqual(manager.getAllChannels(), ["DcloudChannelID"]);
  // as uni-app code does it: look, then create
  if (manager.getAllChannels().indexOf("chat") < 0) {
    manager.setPushChannel({ channelId: "chat", channelDesc: "Chat", soundName: "ding", importance: 4 });
  }
  assert.ok(manager.getAllChannels().indexOf("chat") >= 0, "listed at once, as on a phone");
  await settleDown();
  const sent = daemon.sent.find((m) => m.method === "setPushChannel").params;
  assert.deepEqual(sent, { channelId: "chat", channelDesc: "Chat", soundName: "ding", importance: 4 });
  assert.deepEqual(await manager.refresh(), ["DcloudChannelID", "chat", "server-made"]);
  // one the daemon refuses is taken back out
  manager.setPushChannel({ channelId: "bad" });
  assert.ok(manager.getAllChannels().includes("bad"));
  await settleDown();
  assert.ok(!manager.getAllChannels().includes("bad"));
});

test("issue 15 item 1: installs on the uni object given, or the global one", () => {
  const daemon = new FakeDaemon();
  const mine = { existing: 1 };
  assert.equal(install(mine, { url: "ws://x/ws", token: "t", WebSocket: daemon.WebSocket }), mine);
  for (const name of ["getPushClientId", "onPushMessage", "offPushMessage", "createPushMessage", "getChannelManager", "getPushChannelManager"]) {
    assert.equal(typeof mine[name], "function", name);
  }
  delete globalThis.uni;
  const g = install({ url: "ws://x/ws", token: "t", WebSocket: daemon.WebSocket });
  assert.equal(g, globalThis.uni);
  assert.equal(typeof globalThis.uni.onPushMessage, "function");
  delete globalThis.uni;
});

test("issue 15 item 1: protocol: the I/O-free framing", () => {
  assert.equal(protocol.request(3, "getAllChannels"), '{"id":3,"method":"getAllChannels","params":{}}');
  assert.equal(protocol.ack(["a"]), '{"method":"ack","params":{"push_ids":["a"]}}');
  assert.deepEqual(protocol.parse("nope"), { kind: "bad", reason: "not JSON" });
  assert.deepEqual(protocol.fail("x", ""), { errMsg: "x:fail" });
  assert.deepEqual(protocol.rename({ errMsg: "getAllChannels:ok", channels: [] }, "refresh"), { errMsg: "refresh:ok", channels: [] });
  assert.equal(protocol.endpointOf("http://127.0.0.1:8790/sdk.js"), "ws://127.0.0.1:8790/ws");
  assert.equal(protocol.endpointOf("https://localhost:8790/sdk.mjs"), "wss://localhost:8790/ws");
  assert.equal(protocol.endpointOf("file:///x.js"), null);
  assert.equal(bridge.TOKEN_KEY, "unipush-bridge-token");
});

test("the endpoint is taken only from the daemon's own SDK paths, not from a bundle or a copy", () => {
  // A bundled SDK's import.meta.url (or a copied script's src) is the app's own server:
  // guessing ws://<that host>/ws there connects the app's own server (a Vite dev
  // server may leave that upgrade unanswered) instead of saying the url is missing.
  assert.equal(protocol.endpointOf("http://127.0.0.1:8790/unipush-bridge.js?v=2"), "ws://127.0.0.1:8790/ws");
  assert.equal(protocol.endpointOf("http://[::1]:8790/sdk.mjs#x"), "ws://[::1]:8790/ws");
  for (const url of [
    "http://localhost:5173/node_modules/.vite/deps/unipush-bridge-js_sdk.js?v=1a2b",
    "http://localhost:5173/assets/index-4f2a9c.js",
    "http://localhost:5173/static/unipush-bridge.js",
    "http://localhost:5173/sdk.js.map",
  ]) {
    assert.equal(protocol.endpointOf(url), null, url);
  }
});
