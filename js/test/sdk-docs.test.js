// The install lines README.md and docs/web.md tell a page to paste, run as a browser
// runs them: the SDK's <script>, then the inline one, in a fresh global that has no
// `uni` yet (the page's own scripts, uni-app's among them, come after).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const ROOT = new URL("../../", import.meta.url);
const SDK = readFileSync(new URL("js/sdk/unipush-bridge.js", ROOT), "utf8");

function inlineInstallScripts(doc) {
  const text = readFileSync(new URL(doc, ROOT), "utf8");
  return [...text.matchAll(/<script>((?:(?!<\/script>)[^\n])*UniPushBridge\.install(?:(?!<\/script>)[^\n])*)<\/script>/g)].map((m) => m[1]);
}

for (const doc of ["README.md", "docs/web.md"]) {
  test(`${doc}: its inline install line runs in a page that has no uni yet`, () => {
    const snippets = inlineInstallScripts(doc);
    assert.ok(snippets.length > 0, `${doc} shows no <script>UniPushBridge.install(...)</script>`);
    for (const snippet of snippets) {
      const store = new Map();
      const window = {
        console,
        setTimeout,
        localStorage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) },
        WebSocket: class {},
      };
      window.window = window;
      const page = vm.createContext(window);
      vm.runInContext(SDK, page, { filename: "sdk.js" });
      assert.doesNotThrow(() => vm.runInContext(snippet, page), `${doc}: ${snippet}`);
      assert.equal(typeof window.uni?.getPushClientId, "function", `${doc}: ${snippet}`);
    }
  });
}

/** The main.js lines a doc shows a uni-app project (```js blocks that pass uni-h5's
 * invokePushCallback). */
function mainJsSnippets(doc) {
  const text = readFileSync(new URL(doc, ROOT), "utf8");
  return [...text.matchAll(/```js\n((?:(?!```)[\s\S])*?invokePushCallback: uni\.invokePushCallback(?:(?!```)[\s\S])*?)```/g)].map((m) => m[1]);
}

for (const doc of ["README.md", "docs/web.md"]) {
  test(`${doc}: its main.js lines give a production uni-app build its cid`, async () => {
    const snippets = mainJsSnippets(doc);
    assert.ok(snippets.length > 0, `${doc} shows no main.js install`);
    const { install } = await import("../sdk/index.js");
    const { FakeDaemon } = await import("./sdk-fakes.js");
    for (const [i, snippet] of snippets.entries()) {
      const h5 = await import(`../../tests/e2e/uniapp_h5/vite/uni-h5.js?doc=${doc}&i=${i}`);
      const token = /token: "([^"]*)"/.exec(snippet)[1];
      const daemon = new FakeDaemon({ token });
      // a default production build: window.uni is {}, and uni.invokePushCallback is
      // compiled into uni-h5's function (uni-h5-vite's inject plugin)
      const code = snippet
        .replace(/^\s*import \{ install \} from "unipush-bridge-js\/sdk".*$/m, "")
        .replace(/\buni\.invokePushCallback\b/g, "$inject_uni_invokePushCallback");
      const saved = globalThis.WebSocket;
      globalThis.WebSocket = daemon.WebSocket;
      try {
        new Function("install", "uni", "$inject_uni_invokePushCallback", code)(install, {}, h5.invokePushCallback);
        const res = await h5.getPushClientId();
        assert.equal(res.cid, daemon.cid, `${doc}: ${snippet}`);
        assert.equal(daemon.socket.url, "ws://127.0.0.1:8790/ws");
      } finally {
        globalThis.WebSocket = saved;
      }
    }
  });
}
