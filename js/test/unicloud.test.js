// issue 15 items 3 and 4: uniCloud.getPushManager for Node against a REAL gateway (and a
// real daemon holding a registered cid): every method the gateway serves, a failed call's
// exact shape (it resolves, as on uniCloud), auth failure, a gateway that is down, a URL
// where something else answers.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import {
  GatewayUnreachable,
  SERVED_METHODS,
  UNSUPPORTED_METHODS,
  createUniCloud,
  uniCloud,
} from "../unicloud/index.js";
import { SECRET, deadPort, needsCli, stackDir } from "./unicloud-stack.js";

const APPID = "__UNI__DESKTOP";
const PREFIX = "uni-cloud-push-error-";

describe("getPushManager against a real gateway", needsCli(), () => {
  let stack;
  let gateway;
  let daemon;
  let push;

  before(async () => {
    stack = stackDir();
    gateway = await stack.gateway({ secret: SECRET });
    daemon = await stack.daemon(gateway, APPID);
    push = createUniCloud({ url: gateway.url, secret: SECRET }).getPushManager({ appId: APPID });
  });
  after(async () => stack && (await stack.close()));

  test("issue 15 item 3: the shim has every method the gateway's /openapi.json serves", async () => {
    const doc = await (await fetch(`${gateway.url}/openapi.json`)).json();
    const served = Object.values(doc.paths).map((p) => p.post.operationId);
    assert.deepEqual([...SERVED_METHODS].sort(), served.sort());
    for (const name of [...SERVED_METHODS, ...UNSUPPORTED_METHODS]) {
      assert.equal(typeof push[name], "function", name);
    }
  });

  test("issue 15 item 3: sendMessage reaches the daemon's listener; the answer is uni's", async () => {
    const before = daemon.events().length;
    const res = await push.sendMessage({
      push_clientid: daemon.cid,
      title: "订单",
      content: "已发货",
      payload: { path: "/pages/order" },
      group_name: "js-group",
    });
    assert.equal(res.errCode, 0);
    const [[taskid, statuses]] = Object.entries(res.data);
    assert.match(taskid, /^RASL_/);
    assert.deepEqual(statuses, { [daemon.cid]: "successed_online" });
    const events = await daemon.waitEvents(before + 1);
    const ev = events[before];
    assert.equal(ev.type, "receive");
    assert.deepEqual(ev.data.payload, { path: "/pages/order" });
    assert.equal(ev.data.title, "订单");

    const report = await push.getReport({ taskid });
    assert.equal(report.errCode, 0, report.errMsg);
    assert.equal(report.data[taskid].total.msg_num, 1);
    const group = await push.getReportByGroupName("js-group");
    assert.equal(group.errCode, 0, group.errMsg);
    assert.ok(group.data["js-group"].total);
    const today = await push.getTodayReport();
    assert.equal(today.errCode, 0, today.errMsg);
    assert.equal(Object.keys(today.data).length, 1);
  });

  test("issue 15 item 3: aliases: bind, read both ways, unbind one, unbind all", async () => {
    const cid = daemon.cid;
    assert.equal((await push.cidBindAlias([{ cid, alias: "alice" }])).errCode, 0);
    assert.equal((await push.getAliasByCid(cid)).data.alias, "alice");
    assert.deepEqual((await push.getCidByAlias("alice")).data.cid, [cid]);
    assert.equal((await push.unboundAlias([{ cid, alias: "alice" }])).errCode, 0);
    assert.deepEqual((await push.getCidByAlias("alice")).data.cid, []);
    assert.equal((await push.cidBindAlias([{ cid, alias: "bob" }])).errCode, 0);
    assert.equal((await push.unboundAllAlias("bob")).errCode, 0);
    assert.deepEqual((await push.getCidByAlias("bob")).data.cid, []);
  });

  test("issue 15 item 3: custom tags: set, add, remove, search", async () => {
    const cid = daemon.cid;
    const set = await push.cidBindCustomTags({ cid, custom_tag: ["vip", "beta"] });
    assert.equal(set.errCode, 0, set.errMsg);
    assert.deepEqual((await push.cidsBindCustomTag({ cids: [cid], custom_tag: "night" })).data, {
      [cid]: "true",
    });
    assert.deepEqual((await push.cidsUnboundCustomTag({ cids: [cid], custom_tag: "beta" })).data, {
      [cid]: "true",
    });
    const found = await push.searchCustomTagByCid(cid);
    assert.deepEqual([...found.data[cid]].sort(), ["night", "vip"]);
  });

  test("issue 15 item 3: client status and detail; the uni-id mapping", async () => {
    const cid = daemon.cid;
    const status = await push.getClientStatusByCid(cid);
    assert.equal(status.data[cid].status, "online");
    const detail = await push.getClientDetailByCid([cid, "0".repeat(32)]);
    assert.equal(detail.data.validCids[cid].online, true);
    assert.deepEqual(detail.data.invalidCids, ["0".repeat(32)]);
    const bound = await push.bindUniIdDevice({ push_clientid: cid, user_id: "u-1" });
    assert.equal(bound.errCode, 0, bound.errMsg);
    const res = await push.sendMessage({ user_id: "u-1", title: "t", content: "c", payload: {} });
    assert.equal(res.errCode, 0, res.errMsg);
  });

  test("issue 15 item 3: a failed call RESOLVES with {errCode, errMsg, data}, never throws", async () => {
    const res = await push.sendMessage({ push_clientid: daemon.cid, title: "x".repeat(21), content: "c", payload: {} });
    assert.deepEqual(Object.keys(res).sort(), ["data", "errCode", "errMsg"]);
    assert.equal(typeof res.errCode, "string");
    assert.ok(res.errCode.startsWith(PREFIX), res.errCode);
    assert.match(res.errMsg, /title/);
    // uni-im's check for a cid that is gone: errMsg exactly "target user is invalid".
    const gone = await push.sendMessage({ push_clientid: "f".repeat(32), title: "t", content: "c", payload: {} });
    assert.deepEqual(gone, { errCode: `${PREFIX}20001`, errMsg: "target user is invalid", data: null });
    assert.equal(res.data, null);
    const bad = await push.cidBindAlias([{ cid: daemon.cid, alias: "has space" }]);
    assert.equal(bad.errCode, `${PREFIX}20001`);
    assert.match(bad.errMsg, /alias/);
  });

  test("issue 15 item 3: uniCloud's methods the gateway lacks resolve with its 'not supported'", async () => {
    for (const name of UNSUPPORTED_METHODS) {
      const res = await push[name]("x");
      assert.equal(res.errCode, `${PREFIX}400`, name);
      assert.match(res.errMsg, new RegExp(`${name} is not supported by this gateway`));
    }
  });

  test("issue 15 item 3: a wrong or missing secret resolves with errCode 401 (no throw)", async () => {
    const wrong = createUniCloud({ url: gateway.url, secret: "x".repeat(20) });
    const res = await wrong.getPushManager({ appId: APPID }).getClientStatusByCid(daemon.cid);
    assert.deepEqual(res, {
      errCode: `${PREFIX}401`,
      errMsg: "unauthorized: send Authorization: Bearer <server_secret>",
      data: null,
    });
    const none = createUniCloud({ url: gateway.url }).getPushManager({ appId: APPID });
    assert.equal((await none.getTodayReport()).errCode, `${PREFIX}401`);
  });

  test("issue 15 item 3: URL and secret come from the Python client's variables", async () => {
    const saved = { ...process.env };
    try {
      process.env.UNIPUSH_BRIDGE_SEND_URL = gateway.url;
      process.env.UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET = SECRET;
      const res = await uniCloud.getPushManager({ appId: APPID }).getClientStatusByCid(daemon.cid);
      assert.equal(res.errCode, 0, res.errMsg);
      // options win over the environment
      process.env.UNIPUSH_BRIDGE_SEND_URL = `http://127.0.0.1:${await deadPort()}`;
      const opt = createUniCloud({ url: gateway.url }).getPushManager({ appId: APPID });
      assert.equal((await opt.getClientStatusByCid(daemon.cid)).errCode, 0);
    } finally {
      process.env = saved;
    }
  });
});

describe("what rejects: no gateway, or something else answering", () => {
  test("issue 15 item 3: a gateway that is down rejects with GatewayUnreachable (errCode, errMsg)", async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    const push = createUniCloud({ url }).getPushManager({ appId: APPID });
    await assert.rejects(push.sendMessage({ title: "t", content: "c", payload: {} }), (exc) => {
      assert.ok(exc instanceof GatewayUnreachable);
      assert.equal(exc.errCode, "unipush-bridge-gateway-unreachable");
      assert.match(exc.errMsg, new RegExp(`cannot reach the gateway at ${url}: ECONNREFUSED`));
      return true;
    });
  });

  test("issue 15 item 3: another web server, or one that never answers, rejects naming it", async () => {
    const server = createServer((req, res) => {
      if (req.url.includes("stall")) return; // never answers
      res.writeHead(200, { "Content-Type": "text/html" }).end("<html>hello</html>");
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${server.address().port}`;
    try {
      const push = createUniCloud({ url, timeout: 300 }).getPushManager({ appId: APPID });
      await assert.rejects(push.getTodayReport(), (exc) => {
        assert.ok(exc instanceof GatewayUnreachable);
        assert.match(exc.message, /answered HTTP 200 with 18 bytes of text\/html, not a uni envelope/);
        return true;
      });
      const stalled = createUniCloud({ url: `${url}/stall`, timeout: 300 });
      await assert.rejects(stalled.getPushManager({ appId: APPID }).getTodayReport(), /no answer within 300 ms/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test("issue 15 item 3: past the gateway's limit on failed authentications: a 429 resolves too", needsCli(), async () => {
    const stack = stackDir();
    try {
      const gateway = await stack.gateway({ secret: SECRET });
      const push = createUniCloud({ url: gateway.url, secret: "y".repeat(20) }).getPushManager({ appId: APPID });
      const codes = [];
      for (let i = 0; i < 11; i++) codes.push((await push.getTodayReport()).errCode);
      assert.deepEqual(codes, [...Array(10).fill(`${PREFIX}401`), `${PREFIX}10005`]);
      const good = createUniCloud({ url: gateway.url, secret: SECRET }).getPushManager({ appId: APPID });
      const blocked = await good.getTodayReport(); // the address is blocked, the call still answers
      assert.equal(blocked.errCode, `${PREFIX}10005`);
      assert.match(blocked.errMsg, /too many failed authentications/);
      assert.equal(blocked.data, null);
    } finally {
      await stack.close();
    }
  });

  test("issue 15 item 3: bad options fail at once, naming the option and the rule", () => {
    assert.throws(() => createUniCloud({ url: "ws://127.0.0.1:8787" }), /^TypeError: url: .* must be http/);
    assert.throws(() => createUniCloud({ url: "not a url" }), /^TypeError: url: "not a url" is not a URL/);
    assert.throws(() => createUniCloud({ secret: "" }), /^TypeError: secret: must be a non-empty string/);
    assert.throws(() => createUniCloud({ timeout: 0 }), /^TypeError: timeout: must be a positive/);
    assert.throws(() => uniCloud.getPushManager({}), /getPushManager: needs \{appId\}/);
  });
});
