// uniCloud server code as public cloud functions write it, through the uniCloud shim,
// against a REAL gateway and a REAL daemon whose listener records what arrives. Each
// test names the public file it follows (repo and path, or the find_string id of a file
// the code index holds without its repository); the code is written anew, not copied.
// What should happen is uniCloud's: the answer {errCode: 0, errMsg: "", data: {taskid:
// {cid: status}}}, and the message as the JSON of the fields given.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { createUniCloud } from "../unicloud/index.js";
import { needsCli, stackDir } from "./unicloud-stack.js";

const APPID = "__UNI__DESKTOP";

describe("public cloud functions' sendMessage calls against a real gateway and daemon", needsCli(), () => {
  let stack;
  let daemon;
  let uniPush;

  before(async () => {
    stack = stackDir();
    const gateway = await stack.gateway();
    daemon = await stack.daemon(gateway, APPID);
    uniPush = createUniCloud({ url: gateway.url }).getPushManager({ appId: APPID });
  });
  after(async () => stack && (await stack.close()));

  /** The next event at the daemon's listener after `n` seen. */
  async function nextEvent(n) {
    return (await daemon.waitEvents(n + 1))[n];
  }

  test("a URL-triggered function: JSON.parse(event.body), a cid list, force_notification, request_id, options", async () => {
    // find_string id 7104219424: `let obj = JSON.parse(event.body)`, then sendMessage
    // with push_clientid: obj.cids (an array), force_notification: true, request_id:
    // obj.request_id and options: obj.options, either of which the caller may leave out
    // (JSON.stringify drops undefined).
    const event = { body: JSON.stringify({ cids: [daemon.cid], title: "标题", content: "内容", data: { id: 7 } }) };
    const obj = JSON.parse(event.body);
    const n = daemon.events().length;
    const res = await uniPush.sendMessage({
      push_clientid: obj.cids,
      title: obj.title,
      content: obj.content,
      payload: obj.data,
      force_notification: true,
      request_id: obj.request_id,
      options: obj.options,
    });
    assert.equal(res.errCode, 0, res.errMsg);
    assert.equal(res.errMsg, "");
    assert.deepEqual(Object.values(res.data), [{ [daemon.cid]: "successed_online" }]);
    const ev = await nextEvent(n);
    assert.deepEqual(ev.data.payload, { id: 7 });
    assert.equal(ev.data.force_notification, true);
  });

  test("a payload that is a JSON string stays a string; one with a JSON string inside keeps it", async () => {
    // find_string id 65929360852 (a cloud object): `payload: JSON.stringify({ page:
    // '/pages/pending/index', orderNo })`, in a try whose catch reads pushErr.message;
    // find_string id 415986246: payload {pushType, allParams: JSON.stringify(allParams)}.
    // uni hands the payload on as sent: pages parse the string themselves
    // (`typeof payload != 'object' && JSON.parse(payload)`, liulibiao/overloan App.vue).
    const n = daemon.events().length;
    const text = JSON.stringify({ page: "/pages/pending/index", orderNo: "A1" });
    let res;
    try {
      res = await uniPush.sendMessage({ push_clientid: daemon.cid, title: "新订单待取货", content: "订单 A1 等待您取货", payload: text });
    } catch (pushErr) {
      assert.fail(`sendMessage threw: ${pushErr.message}`);
    }
    assert.equal(res.errCode, 0, res.errMsg);
    const allParams = { pushClientId: daemon.cid, title: "t", content: "c", pushType: 0 };
    res = await uniPush.sendMessage({
      push_clientid: allParams.pushClientId,
      force_notification: true,
      title: allParams.title,
      content: allParams.content,
      payload: { pushType: allParams.pushType, allParams: JSON.stringify(allParams) },
    });
    assert.equal(res.errCode, 0, res.errMsg);
    const [first, second] = (await daemon.waitEvents(n + 2)).slice(n);
    assert.equal(first.data.payload, text);
    assert.deepEqual(JSON.parse(first.data.payload), { page: "/pages/pending/index", orderNo: "A1" });
    assert.equal(typeof second.data.payload.allParams, "string");
    assert.deepEqual(JSON.parse(second.data.payload.allParams), allParams);
  });

  test("a cloud object that sends only a cid and a payload: a transparent message, no title or content", async () => {
    // find_string id 43206186137: `uniPush.sendMessage({push_clientid: msg.cid, payload:
    // msg.msg})`, no title, no content. The message has only what was given.
    const n = daemon.events().length;
    const res = await uniPush.sendMessage({ push_clientid: daemon.cid, payload: { msg: "hi" } });
    assert.equal(res.errCode, 0, res.errMsg);
    const ev = await nextEvent(n);
    assert.equal(ev.type, "receive");
    assert.match(ev.push_id, /^[0-9a-f]{32}$/);
    // __UUID__ (the message's id) and appid, as uni's App runtime puts them in data.
    assert.deepEqual(ev.data, { unipush_version: "2.0", payload: { msg: "hi" }, __UUID__: ev.push_id, appid: APPID });
  });

  test("category as a vendor object and a Huawei test-message option pass; the category rides along", async () => {
    // find_string id 17227363537: force_notification, category {"harmony": "EXPRESS",
    // "huawei": "EXPRESS", "vivo": "ORDER"} and options.HW target_user_type 1.
    const n = daemon.events().length;
    const category = { harmony: "EXPRESS", huawei: "EXPRESS", vivo: "ORDER" };
    const res = await uniPush.sendMessage({
      push_clientid: daemon.cid,
      title: "t",
      content: "c",
      payload: { text: "体验一下uni-push2.0" },
      force_notification: true,
      category,
      options: { HW: { "/message/android/target_user_type": 1 } },
    });
    assert.equal(res.errCode, 0, res.errMsg);
    const ev = await nextEvent(n);
    assert.deepEqual(ev.data.category, category);
    assert.equal("options" in ev.data, false);
  });

  test("a record as the payload with request_id Date.now().toString(); the same request_id again is dropped", async () => {
    // find_string id 54143257128: payload: newMsg (a database record), force_notification
    // false, request_id: Date.now().toString() (13 characters), an HW option. uni drops a
    // message whose request_id repeats (unipush-spec 3.6).
    const n = daemon.events().length;
    const newMsg = { _id: "65f0", text: "战区", create_time: new Date(Date.UTC(2026, 2, 1)) };
    const body = {
      push_clientid: daemon.cid,
      title: "战区频道",
      content: "你有新的战区通讯",
      payload: newMsg,
      force_notification: false,
      request_id: Date.now().toString(),
      options: { HW: { "/message/android/notification/badge/class": "" } },
    };
    const first = await uniPush.sendMessage(body);
    assert.equal(first.errCode, 0, first.errMsg);
    await uniPush.sendMessage(body); // the same request_id: not delivered again
    const ev = await nextEvent(n);
    assert.deepEqual(ev.data.payload, { _id: "65f0", text: "战区", create_time: "2026-03-01T00:00:00.000Z" });
    await uniPush.sendMessage({ push_clientid: daemon.cid, title: "fence", content: "c", payload: {} });
    const later = (await daemon.waitEvents(n + 2)).slice(n);
    assert.deepEqual(later.map((e) => e.data.title), ["战区频道", "fence"]);
  });

  test("uni-id user_id pushes with check_token and platform; uni-im reads each cid's status", async () => {
    // find_string id 70681652047: sendByUserId = sendMessage({user_id, check_token: false,
    // platform: ['mp-weixin'], title, content, payload}); sendByClientIds sends one cid as a
    // string and several as a list. uni-im (find_string id 4884412307) reads the answer as
    // `let taskData = res.data[Object.keys(res.data)]` and looks for 'successed_online'.
    const bound = await uniPush.bindUniIdDevice({ push_clientid: daemon.cid, user_id: "u-42" });
    assert.equal(bound.errCode, 0, bound.errMsg);
    const n = daemon.events().length;
    const res = await uniPush.sendMessage({
      user_id: "u-42",
      check_token: false,
      platform: ["mp-weixin"],
      title: "优培信息通",
      content: "您有一条新通知",
      payload: {},
    });
    assert.equal(res.errCode, 0, res.errMsg);
    const taskData = res.data[Object.keys(res.data)];
    let state = false;
    for (const key in taskData) if (taskData[key] === "successed_online") state = true;
    assert.equal(state, true, JSON.stringify(res));
    const cids = [daemon.cid];
    const byCid = await uniPush.sendMessage({
      push_clientid: cids.length === 1 ? cids[0] : cids,
      title: "优培信息通",
      content: "您有一条新通知",
      payload: {},
    });
    assert.equal(byCid.errCode, 0, byCid.errMsg);
    const evs = (await daemon.waitEvents(n + 2)).slice(n);
    assert.deepEqual(evs.map((e) => e.data.title), ["优培信息通", "优培信息通"]);
  });

  test("uni-im's strategy 3 push with title and content deleted arrives as data with neither", async () => {
    // uni-im's push helper (find_string id 31330983371): with settings.strategy 3 it
    // deletes pushParam.title and pushParam.content before sendMessage.
    const pushParam = {
      push_clientid: daemon.cid,
      title: "新消息",
      content: "你有一条新消息",
      payload: { type: "uni-im", data: { body: "hello" } },
      settings: { strategy: { default: 3 } },
    };
    delete pushParam.title;
    delete pushParam.content;
    const n = daemon.events().length;
    const res = await uniPush.sendMessage(pushParam);
    assert.equal(res.errCode, 0, res.errMsg);
    const ev = await nextEvent(n);
    assert.match(ev.push_id, /^[0-9a-f]{32}$/);
    assert.deepEqual(ev.data, {
      unipush_version: "2.0",
      payload: { type: "uni-im", data: { body: "hello" } },
      __UUID__: ev.push_id,
      appid: APPID,
    });
  });
});
