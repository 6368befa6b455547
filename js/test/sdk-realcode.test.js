// The browser SDK against calling patterns taken from public uni-app code (each test
// names the repository and file it follows; the code is written anew, not copied), with
// uni's own runtime as the reference for what should happen:
// dcloudio/uni-app packages/uni-api/src/helpers/api/{callback,catch,promise}.ts and
// packages/uni-api/src/service/plugin/push.ts.
import { test } from "node:test";
import assert from "node:assert/strict";

import { install } from "../sdk/index.js";
import { FakeDaemon, settleDown } from "./sdk-fakes.js";

function page(daemon, extra = {}) {
  const uni = {};
  install(uni, { url: "ws://127.0.0.1:8790/ws", token: "tok", WebSocket: daemon.WebSocket, ...extra });
  return uni;
}

/** console.error's calls and the unhandled rejections while `fn` runs. */
async function watching(fn) {
  const logged = [];
  const unhandled = [];
  const error = console.error;
  const onUnhandled = (e) => unhandled.push(e);
  console.error = (...args) => logged.push(args);
  process.on("unhandledRejection", onUnhandled);
  try {
    await fn();
    await settleDown(20);
  } finally {
    console.error = error;
    process.off("unhandledRejection", onUnhandled);
  }
  return { logged, unhandled };
}

test("a success callback that throws: logged with console.error, complete still runs (uni's tryCatch)", async () => {
  // A page method called from success, as in a public App.vue
  // (find_string id 3075916391: `success: (res) => { uni.setStorageSync(...);
  // this.uploadPushClientId(res.cid) }`) where `this` is not the component: uni wraps
  // each callback in tryCatch (helpers/api/catch.ts: console.error(e)) and calls
  // complete after success whatever it did (helpers/api/callback.ts).
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const done = [];
  const self = {};
  const { logged, unhandled } = await watching(() => {
    uni.getPushClientId({
      success: (res) => {
        done.push(["success", res.cid]);
        self.uploadPushClientId(res.cid); // TypeError: not a function
      },
      fail: (err) => done.push(["fail", err.errMsg]),
      complete: () => done.push(["complete"]),
    });
  });
  assert.deepEqual(done, [["success", daemon.cid], ["complete"]]);
  assert.equal(logged.length, 1, "the page's error is shown, not swallowed");
  assert.ok(logged[0][0] instanceof TypeError);
  assert.deepEqual(unhandled, []);
});

test("a fail callback that throws is logged too, and complete runs", async () => {
  // createPushMessage with only success and fail, as in a public page's pushMsg
  // (find_string id 66433726111: `fail() { uni.showToast(...) }`), here fail throwing.
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const done = [];
  const { logged, unhandled } = await watching(() => {
    uni.createPushMessage({
      title: "t",
      success: () => done.push("success"),
      fail: () => {
        done.push("fail");
        throw new Error("in fail");
      },
      complete: () => done.push("complete"),
    });
  });
  assert.deepEqual(done, ["fail", "complete"]);
  assert.equal(logged.length, 1);
  assert.equal(logged[0][0].message, "in fail");
  assert.deepEqual(unhandled, []);
});

test("uni-app x code reads a failure's err.message: it is the errMsg, as on UniError", async () => {
  // DCloud's hello-uni-app-x pages/API/uni-push/uni-push.uvue (find_string id
  // 55709074916): getPushClientId's fail does `err.message.includes('uniPush is not
  // enabled')` and `err.message.includes('getPushClientId:fail register fail: ...')`.
  // uni-app x's UniError extends Error with super(errMsg), so message is the errMsg.
  const reason = 'register fail: {"errorCode":1,"errorMsg":""}';
  const daemon = new FakeDaemon({ answers: { getPushClientId: () => ({ errMsg: `getPushClientId:fail ${reason}` }) } });
  const uni = page(daemon);
  let shown = null;
  const { logged } = await watching(() => {
    uni.getPushClientId({
      success: () => assert.fail("succeeded"),
      fail: (err) => {
        if (err.message.includes("uniPush is not enabled")) shown = "not enabled";
        else if (err.message.includes(`getPushClientId:fail ${reason}`)) shown = "not activated";
        else shown = "other";
      },
    });
  });
  assert.deepEqual(logged, []);
  assert.equal(shown, "not activated");
  const err = await uni.getPushClientId().catch((e) => e);
  assert.equal(err.message, err.errMsg);
  // uni-app's own shape is unchanged: message is not an enumerable field
  assert.deepEqual(JSON.parse(JSON.stringify(err)), { errMsg: `getPushClientId:fail ${reason}` });
  assert.deepEqual(Object.keys(err), ["errMsg"]);
});

test("checked: patterns of public code that already behave as in uni", async () => {
  const daemon = new FakeDaemon();
  const uni = page(daemon);

  // uni-im's init (find_string id 49100705094): off(fn) then on(fn) on every init, and
  // the handler reads res.data.payload.type: one listener, one call per push.
  const seen = [];
  function onPushMsg(res) {
    seen.push(res.data.payload.type);
  }
  for (let i = 0; i < 3; i++) {
    uni.offPushMessage(onPushMsg);
    uni.onPushMessage(onPushMsg);
  }
  await settleDown(20);
  daemon.event("receive", { unipush_version: "2.0", title: "t", content: "c", payload: { type: "uni-im" } }, "p1");
  assert.deepEqual(seen, ["uni-im"]);
  uni.offPushMessage(onPushMsg);

  // A public App.vue (find_string id 6139267588): receive turns into
  // createPushMessage({title: res.data.title || "新通知", ..., payload: res.data.payload});
  // the click comes back with that payload, read as res.data.payload.id.
  const clicks = [];
  const listener = (res) => {
    if (res.type === "receive") {
      uni.createPushMessage({ title: res.data.title || "新通知", content: res.data.content || "点击查看详情", payload: res.data.payload });
    }
    if (res.type === "click") clicks.push(res.data.payload.id);
  };
  uni.onPushMessage(listener);
  await settleDown(20);
  daemon.event("receive", { unipush_version: "2.0", title: "", content: "", payload: { id: 9 } }, "p2");
  await settleDown(20);
  const made = daemon.sent.filter((m) => m.method === "createPushMessage").at(-1).params;
  assert.deepEqual(made, { title: "新通知", content: "点击查看详情", payload: { id: 9 } });
  daemon.event("click", { title: "新通知", content: "点击查看详情", payload: { id: 9 } });
  assert.deepEqual(clicks, [9]);

  // A page that stringifies its payload (find_string id 30355360144:
  // `payload: JSON.stringify(others['payload'])`): the click hands back that string.
  let clickedPayload = null;
  uni.offPushMessage();
  uni.onPushMessage((res) => (clickedPayload = res.data.payload));
  const text = JSON.stringify({ response_receive: 1 });
  uni.createPushMessage({ title: "t", content: "c", payload: text, fail: (err) => assert.fail(err.errMsg) });
  await settleDown(20);
  daemon.event("click", { title: "t", content: "c", payload: text });
  assert.equal(clickedPayload, text);

  // Vue 3 promise style with an empty object (find_string id 27721461614:
  // `const { cid } = await uni.getPushClientId({})`), and try/await/catch as uni-ai's
  // checkIsOpenPush does (find_string id 20293066840).
  const { cid } = await uni.getPushClientId({});
  assert.equal(cid, daemon.cid);

  // offPushMessage() with no argument in onExit/onBeforeUnmount (find_string ids
  // 56056453293, 44692862650) removes all and unsubscribes.
  uni.offPushMessage();
  await settleDown(20);
  assert.equal(daemon.methods().filter((m) => m !== "ack").at(-1), "offPushMessage");
});

test("more public page code: cid in onLaunch and onLoad, a fallback in fail, a bare promise, off wrappers", async () => {
  // msgbyte/tailchat client/w2a/app.js: onLaunch registers onPushMessage, then calls
  // getPushClientId({success: (res) => res.cid, fail(err)}).
  const daemon = new FakeDaemon({
    answers: {
      createPushMessage: (p) =>
        p.content === "refuse" ? { errMsg: "createPushMessage:fail no notification server" } : { errMsg: "createPushMessage:ok" },
    },
  });
  const uni = page(daemon);
  const got = [];
  uni.onPushMessage((res) => got.push([res.type, res.data.payload]));
  let launchCid = null;
  uni.getPushClientId({
    success: (res) => (launchCid = res.cid),
    fail: (err) => assert.fail(err.errMsg),
  });

  // maq128/demo-uni-stat pages/index/index.vue: onLoad's success arrow sets
  // this.push_clientid = res.cid on the component; its fail would set 'xxx'.
  const vm = { push_clientid: "-" };
  (function onLoad() {
    uni.getPushClientId({
      success: (res) => (this.push_clientid = res.cid),
      fail: () => (this.push_clientid = "xxx"),
    });
  }).call(vm);
  // find_string id 43414206617 (App.vue onLaunch) and 701419857 (uni-im's
  // mainAppInfo): the promise form, destructured, in try/catch.
  const { cid: push_clientid } = await uni.getPushClientId();
  await settleDown(20);
  assert.equal(launchCid, daemon.cid);
  assert.equal(vm.push_clientid, daemon.cid);
  assert.equal(push_clientid, daemon.cid);

  daemon.event("receive", { unipush_version: "2.0", title: "t", content: "c", payload: { n: 1 } }, "q1");
  assert.deepEqual(got, [["receive", { n: 1 }]]);

  // find_string id 61496048243: createPushMessage({title, content, payload, cover: false,
  // sound: 'system', fail: () => fallback(...)}): a refusal calls the fallback, the call
  // itself returns nothing and rejects nothing.
  const fallback = [];
  const { logged, unhandled } = await watching(() => {
    const ret = uni.createPushMessage({
      title: "新消息",
      content: "refuse",
      payload: {},
      cover: false,
      sound: "system",
      fail: (err) => fallback.push(err.errMsg),
    });
    assert.equal(ret, undefined);
  });
  assert.deepEqual(fallback, ["createPushMessage:fail no notification server"]);
  assert.deepEqual(logged, []);
  assert.deepEqual(unhandled, []);

  // ZEGO's call kit (find_string id 31683210469): createPushMessage({title, content})
  // with no callback, behind `typeof uni.createPushMessage === 'function'`: a Promise.
  assert.equal(typeof uni.createPushMessage, "function");
  const made = await uni.createPushMessage({ title: "张三", content: "邀请你视频通话" });
  assert.equal(made.errMsg, "createPushMessage:ok");

  // find_string id 55258400447: offPushMessage(callback) when one is given, else
  // offPushMessage(): the second form removes every listener and unsubscribes.
  function offPushMessage(callback) {
    if (callback) uni.offPushMessage(callback);
    else uni.offPushMessage();
  }
  const extra = () => got.push(["extra"]);
  uni.onPushMessage(extra);
  offPushMessage(extra);
  daemon.event("receive", { unipush_version: "2.0", title: "t", content: "c", payload: { n: 2 } }, "q2");
  assert.deepEqual(got.at(-1), ["receive", { n: 2 }]);
  offPushMessage();
  await settleDown(20);
  assert.equal(daemon.methods().filter((m) => m !== "ack").at(-1), "offPushMessage");
});

test("a payload posted as JSON text comes back in the click as the daemon parsed it, an object", async () => {
  // A public App.vue re-posts a receive with `payload: JSON.stringify(others['payload'])`
  // (find_string id 30355360144); uni's runtimes hand the click that text parsed
  // (dcloudio/uni-api uni_modules/uni-push/utssdk/app-android/push/PushMessage.uts,
  // getJsonObject: JSON.parseObject(mPayload)), and so does the daemon. The SDK's own
  // payload objects (kept by their JSON) must not turn it back into the page's string.
  const daemon = new FakeDaemon();
  const uni = page(daemon);
  const text = JSON.stringify({ mode: 5, response_receive: 1 });
  await uni.createPushMessage({ title: "t", content: "c", payload: text });
  let clicked = null;
  uni.onPushMessage((r) => (clicked = r));
  await settleDown();
  daemon.event("click", { title: "t", content: "c", payload: JSON.parse(text) });
  assert.deepEqual(clicked.data.payload, { mode: 5, response_receive: 1 });
});
