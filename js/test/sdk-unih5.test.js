// The SDK on a uni-app H5 build's own runtime: uni-h5 keeps getPushClientId,
// onPushMessage and offPushMessage for itself (a production build compiles the app's
// uni.getPushClientId into an import of uni-h5's function), so the SDK feeds it
// through invokePushCallback, as DCloud's uni-push module does (dcloudio/uni-app
// packages/uni-push/src/index.ts). The runtime is tests/e2e/uniapp_h5/vite/uni-h5.js,
// uni-h5's push part as DCloud's source has it; the browser run of a whole project is
// tests/e2e/test_browser.py.
import { test } from "node:test";
import assert from "node:assert/strict";

import { install } from "../sdk/index.js";
import { FakeDaemon, settleDown } from "./sdk-fakes.js";

let fresh = 0;
/** A new uni-h5 module (its push state is module-level, as in uni-h5). */
function uniH5() {
  return import(`../../tests/e2e/uniapp_h5/vite/uni-h5.js?instance=${++fresh}`);
}

const URL = "ws://127.0.0.1:8790/ws";

test("a production build: uni is {} and the app calls uni-h5's own functions; they get the cid", async () => {
  const h5 = await uniH5();
  const daemon = new FakeDaemon();
  const globalUni = {}; // pages.json's `window.uni = {}` in a tree-shaken build
  install(globalUni, { url: URL, token: "tok", WebSocket: daemon.WebSocket, invokePushCallback: h5.invokePushCallback });
  // App.vue's onLaunch, compiled: $inject_uni_getPushClientId is uni-h5's
  const res = await h5.getPushClientId();
  assert.deepEqual(res, { errMsg: "getPushClientId:ok", cid: daemon.cid });
  assert.equal(globalUni.getPushClientId, undefined, "uni-h5 answers getPushClientId, not the SDK");
  assert.equal(typeof globalUni.createPushMessage, "function", "what uni-h5 lacks is added");
  assert.equal(typeof globalUni.getChannelManager, "function");
});

test("uni-h5's listeners get receive and click; its res.stopped rule holds; each is acked", async () => {
  const h5 = await uniH5();
  const daemon = new FakeDaemon();
  install(h5.uni, { url: URL, token: "tok", WebSocket: daemon.WebSocket }); // dev: window.uni is uni-h5's
  const got = [];
  h5.onPushMessage((res) => {
    got.push(["first", res.type, res.data.title]);
    if (res.data.title === "stop") res.stopped = true;
  });
  h5.onPushMessage((res) => got.push(["second", res.type, res.data.title]));
  await settleDown(5);
  assert.ok(daemon.methods().includes("onPushMessage"), "subscribed at install: uni-h5 holds the listeners");
  daemon.event("receive", { title: "hi", payload: { a: 1 } }, "p1");
  daemon.event("receive", { title: "stop" }, "p2");
  const payload = { chatId: "c-1" };
  h5.uni.createPushMessage({ title: "t", content: "c", payload });
  await settleDown(5);
  daemon.event("click", { title: "t", payload: { chatId: "c-1" } }, "p3");
  assert.deepEqual(got, [
    ["first", "receive", "hi"],
    ["second", "receive", "hi"],
    ["first", "receive", "stop"],
    ["first", "click", "t"],
    ["second", "click", "t"],
  ]);
  const acks = daemon.sent.filter((m) => m.method === "ack").map((m) => m.params.push_ids);
  assert.deepEqual(acks, [["p1"], ["p2"], ["p3"]]);
  assert.equal(typeof h5.uni.getPushClientId, "function");
  assert.equal(h5.uni.getPushClientId, h5.getPushClientId, "uni-h5's own function is left in place");
});

test("the click hands uni-h5's listener the page's own payload object", async () => {
  const h5 = await uniH5();
  const daemon = new FakeDaemon();
  install(h5.uni, { url: URL, token: "tok", WebSocket: daemon.WebSocket });
  const payload = { chatId: "c-9" };
  await h5.uni.createPushMessage({ title: "t", content: "c", payload });
  let clicked = null;
  h5.onPushMessage((res) => (clicked = res.data.payload));
  daemon.event("click", { payload: { chatId: "c-9" } }, "p1");
  assert.equal(clicked, payload);
});

test("no token, or no daemon: uni-h5's getPushClientId fails with the reason, not 'uniPush is not enabled'", async () => {
  const h5 = await uniH5();
  install({}, { url: URL, WebSocket: new FakeDaemon().WebSocket, invokePushCallback: h5.invokePushCallback });
  await assert.rejects(h5.getPushClientId(), (e) =>
    /^getPushClientId:fail not paired: run `unipush-bridge web pair --origin/.test(e.errMsg)
  );

  const down = await uniH5();
  const daemon = new FakeDaemon();
  daemon.refuseConnect = true;
  install({}, { url: URL, token: "tok", WebSocket: daemon.WebSocket, setTimeout: () => 0, invokePushCallback: down.invokePushCallback });
  await assert.rejects(down.getPushClientId(), (e) => e.errMsg === "getPushClientId:fail connection closed");
});

test("a dropped connection: the SDK connects again and uni-h5 gets the cid and the pushes again", async () => {
  const h5 = await uniH5();
  const daemon = new FakeDaemon();
  const timers = [];
  install(h5.uni, { url: URL, token: "tok", WebSocket: daemon.WebSocket, setTimeout: (fn, ms) => timers.push([fn, ms]) });
  const got = [];
  h5.onPushMessage((res) => got.push(res.data.title));
  await settleDown(5);
  daemon.socket.close(1006, "");
  assert.equal(timers.length, 1, "a reconnect is planned although no listener is the SDK's");
  timers[0][0]();
  await settleDown(5);
  assert.equal(daemon.sockets.length, 2);
  assert.equal(daemon.sent.filter((m) => m.method === "onPushMessage").length, 2);
  daemon.event("receive", { title: "after" }, "p9");
  assert.deepEqual(got, ["after"]);
  assert.equal((await h5.getPushClientId()).cid, daemon.cid);
});

test("a vue2 (HBuilderX) uni: its createPushMessage stub is replaced, its push functions kept", async () => {
  // vue2's uni-h5 global uni: Object.create(null) with every name of lib/apis.js, the
  // ones H5 lacks answering "not supported" (src/core/service/uni.js).
  const h5 = await uniH5();
  const uni = Object.create(null);
  uni.invokePushCallback = h5.invokePushCallback;
  uni.getPushClientId = h5.getPushClientId;
  uni.createPushMessage = (o) => o.fail({ errMsg: "createPushMessage:fail method 'uni.createPushMessage' not supported" });
  const daemon = new FakeDaemon();
  install(uni, { url: URL, token: "tok", WebSocket: daemon.WebSocket });
  assert.equal(uni.getPushClientId, h5.getPushClientId);
  const res = await uni.createPushMessage({ title: "t", content: "c" });
  assert.equal(res.errMsg, "createPushMessage:ok");
});

test("a uni that cannot take properties (frozen, a module namespace) is refused with the reason", async () => {
  const h5 = await uniH5();
  const ns = await import(`../../tests/e2e/uniapp_h5/vite/uni-h5.js?instance=${++fresh}`); // `import * as uni`
  for (const uni of [Object.freeze({}), ns]) {
    assert.throws(
      () => install(uni, { url: URL, token: "tok", WebSocket: new FakeDaemon().WebSocket, invokePushCallback: h5.invokePushCallback }),
      (e) => e instanceof TypeError && /cannot take new properties .*pass the global uni \(window\.uni\)/.test(e.message)
    );
  }
});
