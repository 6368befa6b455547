// issue 15 items 3 and 4: unicloud-run (js/unicloud/run.js) as a real process: the three
// sample cloud functions (shaped like public ones, js/examples/unicloud/) run unchanged
// against a real gateway and their pushes arrive at a real daemon; the context fields;
// clear errors and exit codes for a missing file, no exports.main, bad --event JSON, a
// function that throws.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { EXAMPLES, deadPort, needsCli, runFunction, stackDir } from "./unicloud-stack.js";

const APPID = "__UNI__DESKTOP"; // the samples' appId

describe("the sample cloud functions, unchanged, against a real gateway and daemon", needsCli(), () => {
  let stack;
  let gateway;
  let daemon;
  let env;

  before(async () => {
    stack = stackDir();
    gateway = await stack.gateway();
    daemon = await stack.daemon(gateway, APPID);
    env = { UNIPUSH_BRIDGE_SEND_URL: gateway.url };
  });
  after(async () => stack && (await stack.close()));

  test("issue 15 item 4: doUniPush (XiaShar/imparty): the answer printed, the receive at the daemon", async () => {
    const n = daemon.events().length;
    const event = JSON.stringify({ pushCliendId: daemon.cid });
    const run = await runFunction([path.join(EXAMPLES, "doUniPush"), "--event", event], env);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.json.errCode, 0);
    assert.deepEqual(Object.values(run.json.data), [{ [daemon.cid]: "successed_online" }]);
    const ev = (await daemon.waitEvents(n + 1))[n];
    assert.equal(ev.type, "receive");
    assert.equal(ev.data.title, "通知栏显示的标题");
    assert.deepEqual(ev.data.payload, { text: "体验一下uni-push2.0" });
  });

  test("issue 15 item 4: testUniPush (dogyy0119/nurse-service): returns nothing, its console.log on stderr", async () => {
    const event = { pushId: daemon.cid, title: "护理提醒", content: "新订单", text: "order-7" };
    const file = path.join(EXAMPLES, "testUniPush", "index.js");
    const run = await runFunction([file, "--event", JSON.stringify(event)], env);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, "null\n"); // stdout is only the result: console.log went to stderr
    assert.match(run.stderr, /errCode: 0/);
    assert.match(run.stderr, new RegExp(`'?${daemon.cid}'?: 'successed_online'`));
  });

  test("issue 15 item 4: uni-push (dcloudio/hello-uni-push): vendor keys pass, the payload arrives", async () => {
    const n = daemon.events().length;
    const event = JSON.stringify({ push_clientid: daemon.cid });
    const run = await runFunction([path.join(EXAMPLES, "uni-push"), "--event", event], env);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.json.errCode, 0, run.json.errMsg);
    const ev = (await daemon.waitEvents(n + 1))[n];
    assert.equal(ev.data.payload.name, "留言审核通过");
    assert.equal(typeof ev.data.payload.time, "number");
  });

  test("issue 15 item 3: --url wins over the environment; context carries APPID and the rest", async () => {
    const dir = path.join(stack.dir, "ctx");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "package.json"), '{"name": "ctx"}');
    writeFileSync(
      path.join(dir, "index.js"),
      "exports.main = async (event, context) => ({ event, context,\n" +
        "  status: await uniCloud.getPushManager({ appId: context.APPID }).getTodayReport() })\n",
    );
    const dead = { UNIPUSH_BRIDGE_SEND_URL: `http://127.0.0.1:${await deadPort()}` };
    const run = await runFunction(
      [dir, "--event", '{"a": 1}', "--appid", APPID, "--url", gateway.url, "--platform", "app"],
      dead,
    );
    assert.equal(run.status, 0, run.stderr);
    const { event, context, status } = run.json;
    assert.deepEqual(event, { a: 1 });
    assert.equal(status.errCode, 0);
    assert.equal(context.APPID, APPID);
    assert.equal(context.PLATFORM, "app");
    assert.equal(context.FUNCTION_NAME, "ctx");
    assert.equal(context.SOURCE, "client");
    assert.equal(context.CLIENTIP, "127.0.0.1");
    assert.match(context.requestId, /^[0-9a-f-]{36}$/);
    for (const key of ["OS", "CLIENTUA", "LOCALE", "SPACEINFO", "DEVICEID", "RUNTIME_ENV"]) {
      assert.ok(key in context, key);
    }
  });
});

describe("unicloud-run's errors", () => {
  let stack;
  before(() => {
    stack = stackDir();
  });
  after(async () => stack.close());

  function fn(name, source, pkg = `{"name": "${name}"}`) {
    const dir = path.join(stack.dir, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "index.js"), source);
    if (pkg !== null) writeFileSync(path.join(dir, "package.json"), pkg);
    return dir;
  }

  test("issue 15 item 3: a missing file or a directory without index.js exits 2 naming it", async () => {
    const run = await runFunction([path.join(stack.dir, "nope", "index.js")]);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unicloud-run: FUNCTION: .*nope\/index\.js does not exist/);
    const empty = path.join(stack.dir, "empty");
    mkdirSync(empty);
    const dir = await runFunction([empty]);
    assert.equal(dir.status, 2);
    assert.match(dir.stderr, /is a directory without index\.js/);
    const none = await runFunction([]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /FUNCTION: give the cloud function's index\.js/);
  });

  test("issue 15 item 3: no exports.main exits 2 and names what the file exports", async () => {
    const run = await runFunction([fn("nomain", "exports.handler = async () => 1\n")]);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /has no exports\.main function \(exports: handler\)/);
  });

  test("issue 15 item 3: bad --event JSON and unknown flags exit 2 with the rule", async () => {
    const dir = fn("ok", "exports.main = async (e) => e\n");
    const bad = await runFunction([dir, "--event", "{pushId: 1}"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--event: not JSON .*: \{pushId: 1\}/);
    const flag = await runFunction([dir, "--evnt", "{}"]);
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /Unknown option '--evnt'/);
    const bareurl = await runFunction([dir, "--url", "ws://127.0.0.1:1"]);
    assert.equal(bareurl.status, 2);
    assert.match(bareurl.stderr, /url: "ws:\/\/127\.0\.0\.1:1" must be http/);
  });

  test("issue 15 item 3: a throw exits 1 with the error and its errCode; stdout stays empty", async () => {
    const src =
      "exports.main = async () => { const e = new Error('quota'); e.errCode = 'E42'; throw e }\n";
    const run = await runFunction([fn("throws", src)]);
    assert.equal(run.status, 1);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /the function threw Error: quota/);
    assert.match(run.stderr, /\[errCode "E42"\]/);
  });

  test("issue 15 item 3: a gateway that is down: the function's await rejects, exit 1", async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    const run = await runFunction([path.join(EXAMPLES, "doUniPush"), "--url", url, "--event", "{}"]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /GatewayUnreachable: cannot reach the gateway at .*ECONNREFUSED/);
  });

  test("issue 15 item 3: an ES-module file, other uniCloud APIs: clear errors", async () => {
    const esm = await runFunction([fn("esm", "exports.main = async () => 1\n", '{"type": "module"}')]);
    assert.equal(esm.status, 2);
    assert.match(esm.stderr, /is loaded as an ES module .*cloud functions are CommonJS/);
    const db = await runFunction([fn("db", "exports.main = async () => uniCloud.database()\n")]);
    assert.equal(db.status, 1);
    assert.match(db.stderr, /uniCloud\.database is not provided by unicloud-run/);
    const big = await runFunction([fn("bigint", "exports.main = async () => ({ n: 1n })\n")]);
    assert.equal(big.status, 1);
    assert.match(big.stderr, /the function's result is not JSON \(Do not know how to serialize a BigInt\)/);
    const timers = fn("timer", "exports.main = async () => { setInterval(() => {}, 1000); return 'done' }\n");
    const t = await runFunction([timers]);
    assert.equal(t.status, 0);
    assert.equal(t.json, "done"); // the run ends with the answer, as a cloud function's does
  });
});
