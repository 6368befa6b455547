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
