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
