// What uni-h5-vite's pages.json module does in a default production build (tree
// shaking on, packages/uni-h5-vite/src/plugins/pagesJson.ts registerGlobalCode):
// the global uni is an empty object; the app's uni.<api> calls are imports instead.
import { upx2px } from "./uni-h5.js";
window.uni = {};
window.wx = {};
window.rpx2px = upx2px;
