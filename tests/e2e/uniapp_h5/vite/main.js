// The app's main.js as docs/web.md tells a uni-app project to write it: the SDK bundled
// with the app (here served from the page's own origin, as a bundle is), installed on
// the global uni with uni-h5's invokePushCallback. The test serves it after uni's own
// transforms: `import "./pages-json.js"` first (uni-h5-vite src/plugins/mainJs.ts) and,
// for a production build, uni.<api> rewritten as uni-h5-vite's inject plugin does.
import "./pages-json.js";
import { install } from "./sdk/index.js";
import App from "./App.js";

install(uni, {
  url: "__WS__",
  token: new URLSearchParams(location.search).get("token") || undefined,
  invokePushCallback: uni.invokePushCallback,
});

// uni-h5 mounts the app after main.js ran, and App.vue's onLaunch runs then
App.onLaunch();
