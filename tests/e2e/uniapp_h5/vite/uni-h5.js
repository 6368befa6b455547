// @dcloudio/uni-h5 reduced to its push part, the object shapes as DCloud builds them
// (written anew from dcloudio/uni-app, branch uni-app-vue3-release):
// - packages/uni-api/src/service/plugin/push.ts: getPushClientId waits for a
//   "clientId" fed by invokePushCallback, and answers "uniPush is not enabled" if no
//   "enabled" came before its next microtask; onPushMessage/offPushMessage keep the
//   listeners; "pushMsg" is a receive (res.stopped ends it), "click" a click each.
// - packages/uni-api/src/helpers/api/index.ts (defineAsyncApi, invokeFail): callbacks
//   or a Promise, errMsg "<name>:ok" / "<name>:fail <reason>".
// - packages/uni-h5/src/service/api/uni.ts `export const uni = api` (api is
//   `import * as api`), which the published dist/uni-h5.es.js has as
//   Object.defineProperty({__proto__: null, ...}, Symbol.toStringTag, {value: "Module"}):
//   a plain, extensible object, not a Proxy, not frozen.
// uni-h5 has no createPushMessage and no getChannelManager (uni-h5-vite lib/api.json).
let cid;
let cidErrMsg;
let enabled;
const getPushCidCallbacks = [];
const onPushMessageCallbacks = [];

function normalizePushMessage(message) {
  try {
    return JSON.parse(message);
  } catch (e) {}
  return message;
}

export function invokePushCallback(args) {
  if (args.type === "enabled") {
    enabled = true;
  } else if (args.type === "clientId") {
    cid = args.cid;
    cidErrMsg = args.errMsg;
    invokeGetPushCidCallbacks(cid, args.errMsg);
  } else if (args.type === "pushMsg") {
    const message = { type: "receive", data: normalizePushMessage(args.message) };
    for (const callback of onPushMessageCallbacks.slice()) {
      callback(message);
      if (message.stopped) break;
    }
  } else if (args.type === "click") {
    onPushMessageCallbacks.forEach((callback) => callback({ type: "click", data: normalizePushMessage(args.message) }));
  }
}

function invokeGetPushCidCallbacks(id, errMsg) {
  getPushCidCallbacks.forEach((callback) => callback(id, errMsg));
  getPushCidCallbacks.length = 0;
}

function defineAsyncApi(name, fn) {
  return (args = {}) => {
    const { success, fail, complete } = args;
    const promise = new Promise((resolve, reject) =>
      fn(args, {
        resolve: (res) => resolve(Object.assign({ errMsg: name + ":ok" }, res)),
        reject: (errMsg) => reject({ errMsg: name + ":fail" + (errMsg ? " " + errMsg : "") }),
      })
    );
    if (!success && !fail && !complete) return promise;
    promise.then(
      (res) => {
        success && success(res);
        complete && complete(res);
      },
      (res) => {
        fail && fail(res);
        complete && complete(res);
      }
    );
  };
}

export const getPushClientId = defineAsyncApi("getPushClientId", (_, { resolve, reject }) => {
  Promise.resolve().then(() => {
    if (typeof enabled === "undefined") {
      enabled = false;
      cid = "";
      cidErrMsg = "uniPush is not enabled";
    }
    getPushCidCallbacks.push((id, errMsg) => (id ? resolve({ cid: id }) : reject(errMsg)));
    if (typeof cid !== "undefined") invokeGetPushCidCallbacks(cid, cidErrMsg);
  });
});

export const onPushMessage = (fn) => {
  if (onPushMessageCallbacks.indexOf(fn) === -1) onPushMessageCallbacks.push(fn);
};

export const offPushMessage = (fn) => {
  if (!fn) onPushMessageCallbacks.length = 0;
  else if (onPushMessageCallbacks.indexOf(fn) > -1) onPushMessageCallbacks.splice(onPushMessageCallbacks.indexOf(fn), 1);
};

export const upx2px = (n) => n;

const api = Object.defineProperty(
  { __proto__: null, getPushClientId, invokePushCallback, offPushMessage, onPushMessage, upx2px },
  Symbol.toStringTag,
  { value: "Module" }
);
export const uni = api;
